"""`dreamkit demo`: the whole DreamBooth run, offline, on a CPU, in a few minutes.

Base model -> class images -> fine-tune with prior preservation -> before/after grid at the same
seeds, loss curves, and the fine-tuned model folder. It uses a tiny Stable Diffusion built from
configs (dreamkit.testing), so it needs no download and no GPU.
"""

from __future__ import annotations

import time
from pathlib import Path

from .config import TrainConfig
from .errors import DreamkitError

__all__ = ["run_demo", "DEMO_STEPS"]

DEMO_STEPS = 60
RESOLUTION = 32


def run_demo(out="demo-output", steps: int | None = None, with_prior_preservation: bool = True,
             step_mode: str = "two_pass", overwrite: bool = False) -> dict:
    from .sample import sample_rows
    from .testing import make_photos, make_tiny_sd
    from .train import train
    from .viewer import image_grid

    out = Path(out)
    if (out / "run" / "model_index.json").exists() and not overwrite:
        raise DreamkitError(f"--out={str(out)!r} already holds a demo run; pass --overwrite to "
                            f"replace it or choose another --out")
    t0 = time.time()
    base = out / "base-model"
    if not (base / "model_index.json").exists():
        print(f"building the offline base model in {base}")
        make_tiny_sd(base)
    photos = out / "photos"
    if not photos.exists():
        make_photos(photos, n=5, size=RESOLUTION * 2)
    config = TrainConfig(
        pretrained_model_name_or_path=str(base), instance_dir=str(photos), identifier="sks",
        class_noun="toy", with_prior_preservation=with_prior_preservation,
        num_class_images=10, sample_batch_size=5, class_inference_steps=10, resolution=RESOLUTION,
        max_train_steps=steps or DEMO_STEPS, learning_rate=1e-4, step_mode=step_mode,
        output_dir=str(out / "run"), sample_steps=10, num_sample_images=4)
    prompts = config.resolved_sample_prompts
    kw = dict(num_per_prompt=4, seed=0, num_inference_steps=10, height=RESOLUTION, width=RESOLUTION)
    before = sample_rows(str(base), prompts, **kw)
    result = train(config, overwrite=True)
    after = sample_rows(str(result.model_dir), prompts, **kw)
    grid = out / "before_after.png"
    image_grid(before + after, rows=2 * len(prompts)).save(grid)
    summary = {"seconds": round(time.time() - t0, 1), "model": str(result.model_dir),
               "grid": str(grid), "loss_curve": str(out / "run" / "loss.png"),
               "steps": config.max_train_steps, "step_mode": result.step_mode}
    print(f"demo done in {summary['seconds']} s: before/after grid {grid}, "
          f"model {result.model_dir}")
    return summary
