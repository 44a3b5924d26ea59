"""Generating pictures from a trained run (or any Stable Diffusion folder).

Image k of a call always uses seed `seed + k`, so the same seeds on the base model and on the
fine-tuned one give a fair before/after comparison: only the weights differ.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..core.checks import generate_settings, generated_out
from ..core.checks import output_folder as checked_folder
from ..core.errors import ConfigError, DreamkitError
from ..core.prompts import safe_filename
from ..models.loading import load_pipeline
from ..models.lora import has_trained_model
from ..storage.checkpoint import checkpoint_config, find_checkpoints, trained_weights
from .schedulers import SCHEDULERS
from .viewer import image_grid

# diffusers: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["generate", "generate_many", "sample_rows", "save_sample_grid", "save_images",
           "safe_filename", "output_folder", "use_scheduler", "SCHEDULERS", "checkpoint_grid"]



def use_scheduler(pipe, name: str | None):
    """Swap the pipeline's sampler (keeping the model's noise schedule); None keeps it."""
    if not name:
        return pipe
    import diffusers  # heavy: imported when a sampler is swapped

    if name not in SCHEDULERS:
        raise ConfigError("scheduler", name, f"choose one of {', '.join(SCHEDULERS)}")
    cls, extra = SCHEDULERS[name]
    pipe.scheduler = getattr(diffusers, cls).from_config(pipe.scheduler.config, **extra)
    return pipe


def _check_device(device) -> None:
    """A device this machine has (a notebook written on Colab, run on a laptop)."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError("device", device, "use 'cuda', 'cpu', 'mps', or None to choose") \
            from None
    have = {"cpu": True, "cuda": torch.cuda.is_available(),
            "mps": torch.backends.mps.is_available()}
    if not have.get(dev.type, False):
        raise ConfigError("device", device, f"this machine has no {dev.type.upper()}; use "
                          f"'cpu', or None to choose what there is")


def _pipe(model, device=None):
    if isinstance(model, (str, Path)):
        return load_pipeline(str(model), device=device)
    if device is not None:
        model.to(device)
    model.set_progress_bar_config(disable=True)
    return model


@torch.no_grad()
def generate(model, prompt: str, negative_prompt: str | None = None, num_images: int = 4,
             guidance_scale: float = 7.5, num_inference_steps: int = 30, seed: int = 0,
             height: int | None = None, width: int | None = None, device=None,
             scheduler: str | None = None) -> list:
    """`num_images` pictures of `prompt` from a model folder or a loaded pipeline.

    `scheduler`: one of SCHEDULERS ("ddim", "dpm++", "euler_a", ...); None keeps the model's.
    """
    generate_settings(prompt, num_images, num_inference_steps, seed, height, width,
                      guidance_scale, negative_prompt, steps_name="num_inference_steps")
    _check_device(device)
    pipe = use_scheduler(_pipe(model, device), scheduler)
    return generate_many(pipe, [(prompt, seed + k) for k in range(num_images)],
                         negative_prompt=negative_prompt, num_inference_steps=num_inference_steps,
                         guidance_scale=guidance_scale, height=height, width=width)


# Pictures drawn per pipeline call: up to 24 of 64 px (on a CPU the toy UNet draws a picture
# 2.4x faster 24 at a time than alone, 1.5x than in twos: measured, one thread), as many pixels
# at other sizes, and never fewer than the caller's `at_least` (one prompt's pictures, as
# before: 512 px on a T4 draws as many at once as it always did).
PIXELS_PER_CALL = 24 * 64 * 64


@torch.no_grad()
def generate_many(pipe, wanted, *, at_least: int = 1, negative_prompt: str | None = None,
                  height: int | None = None, width: int | None = None, **settings) -> list:
    """One picture per (prompt, seed) in `wanted`, in that order, with the same settings. Each
    picture has its own CPU generator, so it is the picture of that prompt and seed however
    the pictures are grouped into calls (up to float rounding of the batch)."""
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    per_call = max(at_least, PIXELS_PER_CALL // ((height or side) * (width or side)), 1)
    images = []
    for i in range(0, len(wanted), per_call):
        part = wanted[i:i + per_call]
        images += pipe([p for p, _ in part], generator=[torch.Generator("cpu").manual_seed(s)
                                                        for _, s in part],
                       negative_prompt=[negative_prompt] * len(part) if negative_prompt else None,
                       height=height, width=width, **settings).images
    return images


def sample_rows(model, prompts, num_per_prompt: int, seed: int = 0, **kw) -> list:
    """One row per prompt, the same seeds in every row."""
    return generate_many(_pipe(model), [(p, seed + k) for p in prompts
                                        for k in range(num_per_prompt)],
                         at_least=num_per_prompt, **kw)


def save_sample_grid(pipe, config, path) -> list:
    """The training samples: config's prompts × num_sample_images, saved as one grid PNG."""
    prompts = config.resolved_sample_prompts
    images = sample_rows(pipe, prompts, config.num_sample_images, seed=config.seed,
                         num_inference_steps=config.sample_steps,
                         guidance_scale=config.guidance_scale, height=config.resolution,
                         width=config.resolution)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(images, rows=len(prompts), labels=prompts).save(path)
    return images


def save_images(images, folder, prompt: str, seed: int, prefix: str | None = None,
                **settings) -> list:
    """Save PNGs with the prompt, seed and settings in their text metadata.

    Files are named after `prefix` (default: the prompt), made safe by `safe_filename`.
    """
    from PIL.PngImagePlugin import PngInfo

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, img in enumerate(images):
        meta = PngInfo()
        meta.add_text("prompt", prompt)
        meta.add_text("seed", str(seed + k))
        for key, value in settings.items():
            meta.add_text(key, str(value))
        path = folder / f"{safe_filename(prefix or prompt)}_{seed + k:06d}.png"
        img.save(path, pnginfo=meta)
        paths.append(path)
    return paths


def output_folder(model, prompt: str, out=None) -> Path:
    """Where `dreamkit generate` writes: a new folder per call, never over earlier pictures.

    Default: <run>/generated/<time>_<prompt>/ for a training run (its pictures stay with it),
    ./generated/<time>_<prompt>/ for any other model (never inside a model someone gave us).
    An `out` that already holds pictures is refused.
    """
    if out is not None:  # never among what the model was made from, nor in a model of others
        out = generated_out(model, out)
        if out.is_dir() and any(out.glob("*.png")):
            raise ConfigError("out", str(out), "already holds pictures (or is a file); leave "
                              "--out out (each call then gets its own folder) or give a new one")
        out.mkdir(parents=True, exist_ok=True)
        return out
    run = Path(str(model))
    root = run / "generated" if _is_run(run) else Path("generated")
    checked_folder("out", root, model_ok=True)  # writable
    stem = f"{time.strftime('%Y%m%d-%H%M%S')}_{safe_filename(prompt, 40)}"
    for n in range(1, 1000):
        folder = root / (stem if n == 1 else f"{stem}-{n}")
        try:
            folder.mkdir(parents=True)  # fails if it exists: two calls in one second
            return folder
        except FileExistsError:
            continue
    raise DreamkitError(f"{root} holds 999 folders named {stem}*; give --out")


def _is_run(model) -> bool:
    """A finished dreamkit run (its config.json and model): its pictures may stay with it."""
    run = Path(str(model))
    return (run / "config.json").is_file() and has_trained_model(run)


def _as_loaded_adapter(state: dict, model, adapter: str, config: dict) -> dict:
    """A checkpoint's LoRA weights, renamed and scaled for the adapter the final model loaded.
    The loaded adapter has its own name ("default_0"), and the export folded alpha / rank into
    its up weights (its header says alpha = rank); the checkpoint's weights are as trained."""
    rank = config.get("lora_rank") or 1
    trained = (config.get("lora_alpha") or rank) / rank
    loaded = model.peft_config[adapter]
    scale = trained / (loaded.lora_alpha / loaded.r)
    return {k.replace(".default.", f".{adapter}."): v * scale if ".lora_B." in k else v
            for k, v in state.items()}


def checkpoint_grid(run_dir, prompt: str, num_images: int = 2, seed: int = 0, **kw):
    """One row per kept checkpoint of a run, then the final model, at the same seeds: where
    the subject appears, and where it starts to swallow the prompt. Returns (grid, labels)."""
    rows, labels = [], []
    pipe = load_pipeline(str(run_dir))
    for ckpt in find_checkpoints(run_dir, report=lambda m: None):
        for part, state in trained_weights(ckpt).items():
            model = getattr(pipe, part)
            adapters = list(getattr(model, "peft_config", {}))
            if adapters:
                state = _as_loaded_adapter(state, model, adapters[0], checkpoint_config(ckpt))
            model.load_state_dict(state, strict=not adapters)
        rows += generate(pipe, prompt, num_images=num_images, seed=seed, **kw)
        labels.append(f"step {ckpt.step}")
    final = load_pipeline(str(run_dir))
    rows += generate(final, prompt, num_images=num_images, seed=seed, **kw)
    labels.append("final")
    return image_grid(rows, rows=len(labels), labels=labels), labels
