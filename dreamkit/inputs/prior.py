"""Class images for prior preservation (DreamBooth §3.3).

The frozen base model draws `num_class_images` pictures of the class prompt ("a photo of dog").
Training on them next to your photos keeps the model's idea of "a dog" from collapsing onto your
dog. Image i always uses seed `seed + i`, so a run that was cut off continues where it stopped:
files already there are kept, and only the missing indices are drawn. Each file is written
under a temporary name and renamed, so a crash never leaves a half-written PNG behind.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..core import checks
from ..core.errors import ImageError
from ..core.validate import MAX_CLASS_IMAGES
from ..models.loading import build_pipeline
from .photos import find_images, open_image

# tqdm: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["missing_class_indices", "generate_class_images", "class_image_name",
           "prepare_class_images", "class_image_settings"]


def class_image_name(i: int) -> str:
    return f"class_{i:05d}.png"


def _usable(path: Path) -> bool:
    try:
        open_image(path)
        return True
    except ImageError:
        return False


def missing_class_indices(class_dir, num_class_images: int) -> list[int]:
    """Indices still to draw: images already in the folder (yours or ours) count."""
    scan = find_images(class_dir, setting="class_dir", required=False)
    good = [p for p in scan.images if _usable(p)]
    for p in scan.images:
        if p not in good and p.name.startswith("class_"):
            p.unlink()  # a damaged file of ours (e.g. a crash mid-write): redraw it
    need = num_class_images - len(good)
    names = {p.name for p in good}
    out, i = [], 0
    while len(out) < need:
        if class_image_name(i) not in names:
            out.append(i)
        i += 1
    return out


@torch.no_grad()
def generate_class_images(pipe, class_prompt, class_dir, num_class_images: int, *,
                          seed: int = 0, batch_size: int = 4, num_inference_steps: int = 30,
                          guidance_scale: float = 7.5, resolution: int | None = None,
                          negative_prompt: str | None = None, progress: bool = True,
                          device=None) -> list[Path]:
    """Fill `class_dir` up to `num_class_images` images of `class_prompt`; return all paths.

    `class_prompt` may be several prompts: image i is drawn from prompt i mod their number and
    gets its prompt beside it (class_0007.txt), which training pairs it with.
    `pipe` is a StableDiffusionPipeline (see models.build_pipeline / load_pipeline).
    """
    from tqdm.auto import tqdm

    prompts = [class_prompt] if isinstance(class_prompt, str) else list(class_prompt)
    checks.prompt_list("class_prompt", prompts)
    checks.whole("num_class_images", num_class_images, 0, MAX_CLASS_IMAGES)
    class_dir = checks.output_folder("class_dir", class_dir)  # a name, writable, no model in it
    class_dir.mkdir(parents=True, exist_ok=True)
    todo = missing_class_indices(class_dir, num_class_images)
    if todo:
        device = device or pipe.device
        bar = tqdm(total=len(todo), desc="class images", unit="img", disable=not progress)
        for start in range(0, len(todo), batch_size):
            idx = todo[start:start + batch_size]
            # One generator per image: image i is the same whatever the batch size or restart.
            gens = [torch.Generator(device="cpu").manual_seed(seed + i) for i in idx]
            asked = [prompts[i % len(prompts)] for i in idx]
            images = pipe(asked, num_inference_steps=num_inference_steps,
                          guidance_scale=guidance_scale, generator=gens, height=resolution,
                          width=resolution,
                          negative_prompt=[negative_prompt] * len(idx) if negative_prompt else None
                          ).images
            for i, img, prompt in zip(idx, images, asked):
                final = class_dir / class_image_name(i)
                if len(prompts) > 1:  # written first: an image is never without its prompt
                    final.with_suffix(".txt").write_text(prompt + "\n", encoding="utf-8")
                tmp = class_dir / f".{final.name}.tmp"
                with open(tmp, "wb") as f:
                    img.save(f, format="PNG")
                    f.flush()
                    os.fsync(f.fileno())
                tmp.replace(final)
            bar.update(len(idx))
        bar.close()
    return find_images(class_dir, setting="class_dir").images[:max(num_class_images, 0)] \
        if num_class_images else []


def class_image_settings(config) -> dict:
    """generate_class_images' settings from a TrainConfig: training, `dreamkit class-images`
    and the step-by-step notebook draw the same pictures."""
    return dict(seed=config.seed, batch_size=config.sample_batch_size,
                num_inference_steps=config.class_inference_steps,
                guidance_scale=config.guidance_scale, resolution=config.resolution)


def prepare_class_images(config, comps, accelerator, jobs) -> dict:
    """Make the run's missing class images (main process only); {class_dir: images}.

    `jobs` is concepts.class_jobs(...): (class_dir, class prompts, how many) per folder.
    """
    if accelerator.is_main_process and jobs:
        pipe = build_pipeline(comps)
        # Move only: casting the UNet to fp16 here would round the weights we then train.
        # Autocast runs it in fp16 on a GPU all the same.
        pipe.to(accelerator.device)
        pipe.set_progress_bar_config(disable=True)
        for class_dir, prompt, num in jobs:
            with accelerator.autocast():
                generate_class_images(pipe, prompt, class_dir, num,
                                      **class_image_settings(config))
        del pipe
    accelerator.wait_for_everyone()
    return {d: find_images(d, setting="class_dir").images[:num] for d, _, num in jobs}
