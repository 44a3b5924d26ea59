"""The GPU rehearsal: each small-GPU recipe trained for real on a GPU capped at a T4's memory,
beside the planner's figures. Ready for the day a GPU is lent; runs anywhere with --tiny.

    python benchmarks/gpu.py                  # a CUDA GPU: full-size SD 1.5 (and SDXL LoRA)
    python benchmarks/gpu.py --tiny           # the CPU: the tiny test models, same code path

On a GPU it caps this process at 15 GiB (`torch.cuda.set_per_process_memory_fraction`, a free
Colab T4's usable memory), builds full-size Stable Diffusion 1.5 from the configs dreamkit ships
(random weights: nothing is downloaded), and runs `dreamkit.train` for `--steps` steps with
prior preservation for each recipe of `RECIPES` (as users run it: class images, the loop,
the final samples, the model saved), then SDXL LoRA at 1024 px. For each it records
`torch.cuda.max_memory_allocated` / `max_memory_reserved` over the training steps, the median
seconds per step (the first 3 steps left out: warm-up), and the planner's peak and time floor
for a T4, into `benchmarks/gpu.json` (or `--out`), and prints a table for RESULTS.md. A recipe
that runs out of the 15 GiB is recorded as such, and the next one runs.

Aim: under 8 minutes on any recent GPU. Random weights do not learn anything: this measures
memory and speed, not quality.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from dreamkit import TrainConfig, train
from dreamkit.core.callbacks import Callback
from dreamkit.planning.planner import RECIPES, plan
from dreamkit.testing import make_photos

T4_GIB = 15.0
SDXL_LORA = dict(use_lora=True, learning_rate=1e-4, mixed_precision="fp16",
                 gradient_checkpointing=True, resolution=1024)


class _Measure(Callback):
    """Peak CUDA memory over the training steps, and each step's seconds."""

    def __init__(self):
        self.seconds, self.allocated, self.reserved = [], None, None

    def on_train_start(self, config, step_mode, reason):
        self.step_mode = step_mode
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()

    def on_step(self, info):
        self.seconds.append(info.seconds)
        if info.step == info.max_steps and torch.cuda.is_available():
            self.allocated = torch.cuda.max_memory_allocated() / 2**30
            self.reserved = torch.cuda.max_memory_reserved() / 2**30


def build_models(root: Path, tiny: bool, sdxl: bool) -> str:
    """A model folder (tiny) or a hub id the planner knows (full size: built in train())."""
    if tiny:
        from dreamkit.testing import make_tiny_sd, make_tiny_sdxl
        return str((make_tiny_sdxl if sdxl else make_tiny_sd)(root / ("sdxl" if sdxl else "sd")))
    return "stabilityai/stable-diffusion-xl-base-1.0" if sdxl else \
        "stable-diffusion-v1-5/stable-diffusion-v1-5"


def full_size_components(sdxl: bool):
    """SD 1.5 (or SDXL) with random weights from the shipped configs, and SD's vocabulary."""
    from importlib import resources

    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from dreamkit.models.loading import Components, load_tokenizer

    def cfg(name):
        return json.loads(resources.files("dreamkit.planning").joinpath(f"configs/{name}").read_text())

    def clip(name):
        return CLIPTextConfig(**{k: v for k, v in cfg(name).items() if not k.startswith("_")})

    unet = UNet2DConditionModel.from_config(cfg("sdxl_unet.json" if sdxl else "sd15_unet.json"))
    vae = AutoencoderKL.from_config(cfg("sd15_vae.json"))
    te_cfg = clip("sd15_text_encoder.json")
    if sdxl:  # SDXL's first encoder is CLIP ViT-L without the final projection: 768 wide
        te_cfg.projection_dim = 768
    tok = load_tokenizer("sd-vocabulary")
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear",
                          beta_start=0.00085, beta_end=0.012)
    extra = {}
    if sdxl:
        extra = dict(tokenizer_2=tok, text_encoder_2=CLIPTextModelWithProjection(
            clip("sdxl_text_encoder_2.json")))
    return Components(tok, CLIPTextModel(te_cfg), vae, unet, sched, source="random", **extra)


def run_recipe(name: str, settings: dict, model: str, root: Path, steps: int, tiny: bool,
               sdxl: bool = False) -> dict:
    photos = root / "photos"
    if not photos.exists():
        make_photos(photos, n=4, size=64 if tiny else 512)
    if tiny and settings.get("mixed_precision") in ("fp16", "bf16"):
        settings = {**settings, "mixed_precision": "no"}  # a CPU trains in fp32
    if tiny:
        settings = {**settings, "resolution": 32}
    config = TrainConfig(
        pretrained_model_name_or_path=model, instance_dir=str(photos), class_noun="dog",
        with_prior_preservation=True, num_class_images=2, sample_batch_size=2,
        class_inference_steps=2, max_train_steps=steps, checkpointing_steps=0,
        sample_steps=2, num_sample_images=1, sample_prompts=["a photo of zshq dog"],
        output_dir=str(root / "runs" / "".join(ch for ch in name.lower() if ch.isalnum())[:40]),
        **{"resolution": 512, "learning_rate": 5e-6, **settings})
    planned = plan(config, gpu="T4", suggest=False)
    row = {"recipe": name, "settings": settings, "planned_gib": round(planned.total, 2),
           "planned_fits_t4": planned.fits, "flops_per_step": planned.flops,
           "t4_time_floor_s": planned.time_floor and float(f"{planned.time_floor:.3g}")}
    measure = _Measure()
    t0 = time.time()
    try:
        comps = None if tiny else full_size_components(sdxl)
        train(config, callbacks=[measure], plan=planned, overwrite=True, components=comps)
    except torch.cuda.OutOfMemoryError as e:
        row["error"] = f"out of memory within {T4_GIB} GiB: {str(e).splitlines()[0][:120]}"
    except Exception as e:  # a rehearsal records what failed and goes on to the next recipe
        row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    finally:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    later = measure.seconds[3:] or measure.seconds
    row.update({"steps_run": len(measure.seconds), "wall_s": round(time.time() - t0, 1),
                "s_per_step": round(statistics.median(later), 3) if later else None,
                "max_allocated_gib": measure.allocated and round(measure.allocated, 2),
                "max_reserved_gib": measure.reserved and round(measure.reserved, 2),
                "step_mode": getattr(measure, "step_mode", None)})
    return row


def table(rows: list) -> str:
    lines = ["| recipe | planned GiB (T4) | allocated GiB | reserved GiB | s/step | "
             "T4 time floor s | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['recipe']} | {r['planned_gib']} | {r['max_allocated_gib']} | "
                     f"{r['max_reserved_gib']} | {r['s_per_step']} | {r['t4_time_floor_s']} | "
                     f"{r.get('error', '')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny models on the CPU (a check)")
    ap.add_argument("--steps", type=int, default=None, help="steps per recipe (20; tiny: 4)")
    ap.add_argument("--out", default=str(Path(__file__).with_name("gpu.json")))
    ap.add_argument("--no-sdxl", action="store_true", help="leave out SDXL LoRA at 1024 px")
    args = ap.parse_args(argv)
    steps = args.steps or (4 if args.tiny else 20)
    if not args.tiny and not torch.cuda.is_available():
        print("no CUDA GPU here: run with --tiny for the CPU check", file=sys.stderr)
        return 2
    device = "cpu (tiny models)"
    if torch.cuda.is_available() and not args.tiny:
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        torch.cuda.set_per_process_memory_fraction(min(1.0, T4_GIB / total))
        device = f"{torch.cuda.get_device_name(0)} capped at {T4_GIB} GiB of {total:.0f}"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_models(root, args.tiny, sdxl=False)
        for name, settings in RECIPES.items():
            rows.append(run_recipe(name, settings, model, root, steps, args.tiny))
            print(json.dumps(rows[-1]), flush=True)
        if not args.no_sdxl:
            model = build_models(root, args.tiny, sdxl=True)
            rows.append(run_recipe("SDXL LoRA rank 4 at 1024 px, fp16 + checkpointing",
                                   SDXL_LORA, model, root, steps, args.tiny, sdxl=True))
            print(json.dumps(rows[-1]), flush=True)
    result = {"device": device, "torch": torch.__version__, "steps": steps, "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
