"""`dreamkit demo`: a whole DreamBooth run on the toy world, offline, on a CPU, in minutes.

The embedded base model (dreamkit/toy/base-model) has never seen the subject: a disc split into
magenta and cyan. The demo measures the base model, makes class images of "a photo of a toy",
fine-tunes the UNet and the text encoder on twelve captioned photos of the subject with prior
preservation, measures again, and writes:

    before_after.png   same prompts, same seeds: base model (upper rows) vs fine-tuned
    metrics.json       subject fidelity, prompt fidelity, class drift, class diversity
    run/               the fine-tuned model (a diffusers folder), loss.png, samples/, class_images/

`--no-prior` trains without prior preservation, to see the class drift onto the subject.
"""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path

from ..core import checks
from ..core.callbacks import Callback, Events, ProgressBar
from ..core.config import TrainConfig
from ..core.errors import DreamkitError
from ..core.keep import fingerprint, kept, key_of
from ..models.loading import load_pipeline
from ..outputs.sample import sample_rows
from ..outputs.viewer import image_grid
from ..toy import base_model_dir, write_subject_photos
from ..training.loop import train
from .metrics import EVAL_GUIDANCE, EVAL_STEPS, class_prompt, subject_prompts
from .scorer import evaluate_toy
from .world import CONTEXTS, IDENTIFIER

__all__ = ["run_demo", "demo_config", "DEMO_STEPS", "format_metrics", "base_metrics"]

# 500 steps: at 400 one training seed in five left the subject half-learned (0.38-0.63)
DEMO_STEPS = 500
DEMO_LR = 3e-4  # the toy UNet is small; SD 1.5 wants 5e-6
# Three photos (and three class images) a step: subject fidelity over training seeds 0-4 was
# 0.42-0.88 with one a step (lr 2e-4), 0.71-0.92 with two (lr 3e-4), 0.88-1.00 with three,
# and without prior preservation "a toy" drifts on every seed (benchmarks/RESULTS.md, "Two
# photos a step" and "Three photos a step").
DEMO_BATCH = 3
# The toy text encoder gives rare words nearly the same embedding ("sks" and "zwx" differ by
# little), so with it frozen the UNet cannot tell the subject's prompts from the class's and
# learns the subject at most a little (subject fidelity 0.125 after 300 steps, measured). Training
# the text encoder too, as the DreamBooth paper does, gives the identifier its own meaning.
DEMO_TEXT_ENCODER_LR = 4e-4


def demo_config(out: Path, photos: Path, steps: int | None = None,
                with_prior_preservation: bool = True, step_mode: str = "one_pass",
                seed: int = 0) -> TrainConfig:
    return TrainConfig(
        pretrained_model_name_or_path=str(base_model_dir()), instance_dir=str(photos),
        identifier="sks", class_noun="toy", with_prior_preservation=with_prior_preservation,
        # The class images are drawn for the plain class prompt and for the class in every
        # place of the world: prior preservation keeps the class only in the prompts its images
        # were drawn with. Drawn for "a photo of a toy" alone, "a photo of a toy on the beach"
        # showed the subject in 22-23 of 24 pictures (seeds 0, 5, 6, as the issue measured).
        # With the places, no class prompt measured drifts (other wordings can: "a toy on the
        # beach", docs/classroom.md); they pull against the subject's prompts in the same
        # places, which three photos a step (DEMO_BATCH) outweigh.
        class_prompt=class_prompt(), prior_loss_weight=1.0, num_class_images=50,
        class_prompt_variants=[f"{class_prompt()} {phrase}" for phrase, _, _ in CONTEXTS.values()],
        sample_batch_size=25,
        class_inference_steps=EVAL_STEPS, resolution=64,
        max_train_steps=DEMO_STEPS if steps is None else steps,
        train_batch_size=DEMO_BATCH, learning_rate=DEMO_LR, train_text_encoder=True,
        text_encoder_lr=DEMO_TEXT_ENCODER_LR,
        step_mode=step_mode, output_dir=str(out / "run"),
        # every place, then the class plainly and where it drifted most without class images
        sample_prompts=list(subject_prompts().values()) + [class_prompt(),
                                                           f"{class_prompt()} on the beach"],
        num_sample_images=4, sample_steps=EVAL_STEPS, guidance_scale=EVAL_GUIDANCE, seed=seed)


class _Clock(Callback):
    """Where the demo's time goes: seconds per stage (metrics.json's seconds_by_stage)."""

    def __init__(self, t0: float):
        self.last, self.laps, self.samples = t0, {}, None

    def lap(self, stage: str) -> None:
        now = time.time()
        self.laps[stage] = round(now - self.last, 1)
        self.last = now

    def on_train_start(self, config, step_mode, reason):
        self.lap("models loaded, class images drawn")

    def on_step(self, info):
        if info.step == info.max_steps:
            self.lap("training steps")

    def on_samples(self, step, images, path):
        self.samples = images  # the last ones: the fine-tuned model's rows of before/after

    def on_train_end(self, result):
        self.lap("end-of-run samples, model saved")


def _before_after(base, tuned, config, path: Path, tuned_rows=None) -> Path:
    """Same prompts, same seeds: the base model's rows above the fine-tuned model's.
    `tuned_rows`: the run's final samples, drawn with exactly these settings (not redrawn)."""
    prompts = config.resolved_sample_prompts
    kw = dict(num_per_prompt=config.num_sample_images, seed=config.seed,
              num_inference_steps=config.sample_steps, guidance_scale=config.guidance_scale)
    made = _of_base({"rows": prompts, **kw}, config.pretrained_model_name_or_path,
                    lambda: [_png(im) for im in sample_rows(base, prompts, **kw)])
    rows = [_image(s) for s in made] + (tuned_rows or sample_rows(tuned, prompts, **kw))
    picture = image_grid(rows, rows=2 * len(prompts), labels=[f"base: {p}" for p in prompts]
                         + [f"fine-tuned: {p}" for p in prompts])
    picture.resize((picture.width * 3, picture.height * 3), 0).save(path)  # 64 px is small
    return path


# What the base model's measures and pictures depend on, beside its files and the settings
_MEASURING_CODE = ("toy/oracle.py", "toy/metrics.py", "toy/scorer.py", "toy/world.py",
                   "evaluation/evaluate.py", "outputs/sample.py")


def _of_base(what: dict, model: str, make):
    """The base model's numbers and pictures at fixed seeds never change: made once, then kept
    (core/keep.py), so the classroom's later runs and the next demo start training sooner."""
    return kept("toy-base", key_of({**what, "model": fingerprint(model)}, _MEASURING_CODE), make)


def _png(image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode()


def _image(text: str):
    from PIL import Image
    return Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB")


def base_metrics(model: str, identifier: str, say, base=None) -> dict:
    """The base model's toy measures for `identifier` (the demo's "before"): kept after the
    first time (core/keep.py), else measured, saying so first (~20 s on a CPU); `base`: the
    base pipeline if one is loaded already."""
    def measure():
        say("measuring the base model (once; kept for later runs) ...")
        return evaluate_toy(base or load_pipeline(model), identifier=identifier,
                            subject=IDENTIFIER)
    return dict(_of_base({"metrics": identifier}, model, measure))


def format_metrics(before: dict, after: dict) -> str:
    keys = ("subject_fidelity", "subject_colour_share", "prompt_fidelity", "class_drift",
            "class_drift_mean", "class_drift_worst", "class_diversity")
    lines = [f"{'':22}{'base model':>12}{'fine-tuned':>12}"]
    lines += [f"{k:22}{before[k]:>12.3f}{after[k]:>12.3f}" for k in keys if k in after]
    if "class_drift_worst_prompt" in after:
        lines.append(f"(class drift: on 'a photo of a toy', the mean over "
                     f"{len(after['class_drift_by_prompt'])} class prompts and the worst, "
                     f"'{after['class_drift_worst_prompt']}')")
    return "\n".join(lines)


def run_demo(out="demo-output", steps: int | None = None, with_prior_preservation: bool = True,
             step_mode: str = "one_pass", overwrite: bool = False, seed: int = 0,
             callbacks=None, config: TrainConfig | None = None) -> dict:
    """The whole demo; `callbacks` go to train() (default: a progress bar; the classroom
    notebook adds LiveView). `config` (the classroom's panel) replaces the demo's settings;
    its photos and run folder are put under `out`."""
    out = checks.output_folder("out", out, model_ok=True)  # as `dreamkit demo --out` checks it
    if (out / "run" / "model_index.json").exists() and not overwrite:
        raise DreamkitError(f"--out={str(out)!r} already holds a demo run; pass --overwrite to "
                            f"replace it or choose another --out")
    t0 = time.time()
    photos = out / "photos"
    write_subject_photos(photos)
    if config is None:
        config = demo_config(out, photos, steps, with_prior_preservation, step_mode, seed)
    else:
        config = config.replace(instance_dir=str(photos), output_dir=str(out / "run"))
    ident, clock = config.identifier, _Clock(t0)
    callbacks = [ProgressBar()] if callbacks is None else list(callbacks)
    say = Events(callbacks).say  # the demo speaks as the loop does: through the callbacks
    base = load_pipeline(config.pretrained_model_name_or_path)
    before = base_metrics(config.pretrained_model_name_or_path, ident, say, base)
    clock.lap("base model measured")
    result = train(config, callbacks=callbacks + [clock], overwrite=True)
    tuned = load_pipeline(str(result.model_dir))
    say("measuring the fine-tuned model ...")
    after = evaluate_toy(tuned, identifier=ident, subject=IDENTIFIER)  # the photos show sks's disc
    clock.lap("fine-tuned model measured")
    grid = _before_after(base, tuned, config, out / "before_after.png", clock.samples)
    clock.lap("before/after grid")
    prompts = config.resolved_sample_prompts
    summary = {"before": before, "after": after, "identifier": ident, "seed": config.seed,
               "with_prior_preservation": config.with_prior_preservation,
               "prior_loss_weight": config.prior_loss_weight,
               "train_text_encoder": config.train_text_encoder, "steps": config.max_train_steps,
               "step_mode": result.step_mode, "learning_rate": config.learning_rate,
               "seconds": round(time.time() - t0, 1), "grid": str(grid),
               "model": str(result.model_dir), "prompts": prompts, "seconds_by_stage": clock.laps}
    (out / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n")
    say(format_metrics(before, after))
    say("where the time went: " + ", ".join(f"{k} {v} s" for k, v in clock.laps.items()))
    say(f"demo done in {summary['seconds']} s: {grid}, {out / 'metrics.json'}, "
          f"model in {result.model_dir}")
    return summary
