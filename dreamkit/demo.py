"""`dreamkit demo`: a whole DreamBooth run on the toy world, offline, on a CPU, in minutes.

The embedded base model (dreamkit/toy/base-model) has never seen the subject: a disc split into
magenta and cyan. The demo measures the base model, makes class images of "a photo of a toy",
fine-tunes the UNet and the text encoder on five captioned photos of the subject with prior
preservation (two backward passes per step),
measures again, and writes:

    before_after.png   same prompts, same seeds: base model (upper rows) vs fine-tuned
    metrics.json       subject fidelity, prompt fidelity, class drift, class diversity
    run/               the fine-tuned model (a diffusers folder), loss.png, samples/, class_images/

`--no-prior` trains without prior preservation, to see the class drift onto the subject.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .config import TrainConfig
from .errors import DreamkitError
from .models import load_pipeline
from .sample import sample_rows
from .toy import base_model_dir, write_subject_photos
from .toy.metrics import EVAL_GUIDANCE, EVAL_STEPS, class_prompt, subject_prompts
from .toy.scorer import evaluate_toy
from .train import train
from .viewer import image_grid

__all__ = ["run_demo", "demo_config", "DEMO_STEPS", "format_metrics"]

DEMO_STEPS = 400
DEMO_LR = 2e-4  # the toy UNet is small; SD 1.5 wants 5e-6
# The toy text encoder gives rare words nearly the same embedding ("sks" and "zwx" differ by
# little), so with it frozen the UNet cannot tell the subject's prompts from the class's and
# learns the subject at most a little (subject fidelity 0.125 after 300 steps, measured). Training
# the text encoder too, as the DreamBooth paper does, gives the identifier its own meaning.
DEMO_TEXT_ENCODER_LR = 4e-4


def demo_config(out: Path, photos: Path, steps: int | None = None,
                with_prior_preservation: bool = True, step_mode: str = "two_pass",
                seed: int = 0) -> TrainConfig:
    return TrainConfig(
        pretrained_model_name_or_path=str(base_model_dir()), instance_dir=str(photos),
        identifier="sks", class_noun="toy", with_prior_preservation=with_prior_preservation,
        prior_loss_weight=1.0, num_class_images=50, sample_batch_size=25,
        class_inference_steps=EVAL_STEPS, resolution=64, max_train_steps=steps or DEMO_STEPS,
        learning_rate=DEMO_LR, train_text_encoder=True, text_encoder_lr=DEMO_TEXT_ENCODER_LR,
        step_mode=step_mode, output_dir=str(out / "run"),
        sample_prompts=list(subject_prompts().values())[:3] + [class_prompt()],
        num_sample_images=4, sample_steps=EVAL_STEPS, guidance_scale=EVAL_GUIDANCE, seed=seed)


def format_metrics(before: dict, after: dict) -> str:
    keys = ("subject_fidelity", "subject_colour_share", "prompt_fidelity", "class_drift",
            "class_diversity")
    lines = [f"{'':22}{'base model':>12}{'fine-tuned':>12}"]
    lines += [f"{k:22}{before[k]:>12.3f}{after[k]:>12.3f}" for k in keys]
    return "\n".join(lines)


def run_demo(out="demo-output", steps: int | None = None, with_prior_preservation: bool = True,
             step_mode: str = "two_pass", overwrite: bool = False, seed: int = 0,
             callbacks=None) -> dict:
    """The whole demo; `callbacks` go to train() (default: a progress bar; the classroom
    notebook adds LiveView)."""
    out = Path(out)
    if (out / "run" / "model_index.json").exists() and not overwrite:
        raise DreamkitError(f"--out={str(out)!r} already holds a demo run; pass --overwrite to "
                            f"replace it or choose another --out")
    t0 = time.time()
    photos = out / "photos"
    write_subject_photos(photos)
    config = demo_config(out, photos, steps, with_prior_preservation, step_mode, seed)
    base = load_pipeline(config.pretrained_model_name_or_path)
    print("measuring the base model ...")
    before = evaluate_toy(base)
    result = train(config, callbacks=callbacks, overwrite=True)
    tuned = load_pipeline(str(result.model_dir))
    print("measuring the fine-tuned model ...")
    after = evaluate_toy(tuned)

    prompts = config.resolved_sample_prompts
    kw = dict(num_per_prompt=4, seed=seed, num_inference_steps=EVAL_STEPS,
              guidance_scale=EVAL_GUIDANCE)
    rows = sample_rows(base, prompts, **kw) + sample_rows(tuned, prompts, **kw)
    grid = out / "before_after.png"
    picture = image_grid(rows, rows=2 * len(prompts), labels=[f"base: {p}" for p in prompts]
                         + [f"fine-tuned: {p}" for p in prompts])
    picture.resize((picture.width * 3, picture.height * 3), 0).save(grid)  # 64 px is small
    summary = {"before": before, "after": after,
               "with_prior_preservation": with_prior_preservation, "steps": config.max_train_steps,
               "step_mode": result.step_mode, "learning_rate": config.learning_rate,
               "seconds": round(time.time() - t0, 1), "grid": str(grid),
               "model": str(result.model_dir), "prompts": prompts}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(format_metrics(before, after))
    print(f"demo done in {summary['seconds']} s: {grid}, {out / 'metrics.json'}, "
          f"model in {result.model_dir}")
    return summary
