"""The full-size rehearsal on real tensors, on the CPU: SD 1.5 as a T4 would train it.

    python benchmarks/fullsize.py             # ~15 minutes and ~9 GB of RAM on 2 CPU cores

SD 1.5's UNet, text encoder and VAE are built from the configs dreamkit ships, with random
weights (nothing is downloaded), and trained by `dreamkit.train` with `T4_SETTINGS` in fp32
(the CPU's arithmetic; fp16 autocast needs a GPU) at 512 px with prior preservation and
bitsandbytes' 8-bit AdamW, 3 steps. Each stage runs in its own process, so its peak RSS is its
own and a kill is a real kill:

1. **reference**: 3 steps uninterrupted, every tensor watched (dreamkit.planning.memory's
   LiveTensorTracker): the peak of live tensor bytes beside the planner's figure for the same
   configuration (its tensors: without CUDA context and slack). On a GPU the frozen VAE and
   text encoder wait in CPU memory (cache_latents, precompute_text_embeddings), which the plan
   leaves out; here everything is CPU memory, so they are added to the plan for the comparison
   ("frozen_vae_text_encoder_gib"). Then the fp16 memory path:
   one step with the loss-scaled, check-pass backward (fp32 numbers: the same tensors as on a
   GPU at 4 bytes), measured and planned the same way.
2. **killed**: the same run with a checkpoint every step, SIGKILLed once the step-2 checkpoint
   is complete; **resumed**: `resume="auto"` finishes it. Its UNet must equal the reference's.
3. **export**: `dreamkit export --single_file --half`, loaded back by diffusers'
   `from_single_file(config=...)`; the sizes a finished default run leaves on Drive.

Writes benchmarks/fullsize.json and prints the rows for RESULTS.md. Random weights learn
nothing: this checks memory, resume and files at full size, not quality.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = 3
GB = 1e9


def _config(root: Path, name: str, **changes):
    from dreamkit import TrainConfig
    from dreamkit.planning.planner import T4_SETTINGS
    settings = dict(
        pretrained_model_name_or_path="stable-diffusion-v1-5/stable-diffusion-v1-5",
        instance_dir=str(root / "photos"), class_noun="dog", with_prior_preservation=True,
        num_class_images=2, sample_batch_size=1, class_inference_steps=2,
        class_dir=str(root / "class_images"), max_train_steps=STEPS, learning_rate=5e-6,
        sample_steps=2, num_sample_images=1, sample_prompts=["a photo of zshq dog"],
        checkpointing_steps=0, save_precision="fp32", output_dir=str(root / name),
        **T4_SETTINGS)
    return TrainConfig(**{**settings, "mixed_precision": "no", **changes})


def _components():
    import torch
    sys.path.insert(0, str(HERE))
    from gpu import full_size_components
    torch.manual_seed(0)  # the same random "SD 1.5" in every process
    return full_size_components(sdxl=False)


def stage_reference(root: Path) -> dict:
    from dreamkit import train
    from dreamkit.planning.memory import LiveTensorTracker
    from dreamkit.planning.planner import plan
    config = _config(root, "reference")
    planned = plan(config, gpu="T4", suggest=False)
    tensors = sum(v for k, v in planned.parts.items()
                  if k not in ("CUDA context", "allocator slack (5%)"))
    times = []
    from dreamkit.core.callbacks import Callback

    class Seconds(Callback):
        def on_step(self, info):
            times.append(info.seconds)
    tracker = LiveTensorTracker()
    t0 = time.time()
    with tracker:  # the whole run: models, class images, latents, steps, samples, saving
        train(config, callbacks=[Seconds()], components=_components(), plan=planned)
    return {"measured_peak_gib": tracker.peak / 2**30, "planned_tensors_gib": tensors / 2**30,
            "planned_total_gib": planned.total, "s_per_step": times, "wall_s": time.time() - t0}


def stage_fp16_path(root: Path) -> dict:
    """One step with fp16's backward (loss scale, check pass, update inside) in fp32 numbers,
    real tensors against the planner's meta count of the same step."""
    import torch
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from dreamkit.planning.memory import full_step_peak
    config = _config(root, "fp16-path", mixed_precision="fp16")
    unet = _components().unet
    real = full_step_peak(unet, DDPMScheduler(num_train_timesteps=1000), config, 64, "cpu")
    with torch.device("meta"):
        meta = UNet2DConditionModel.from_config(unet.config)
    planned = full_step_peak(meta, DDPMScheduler(num_train_timesteps=1000), config, 64, "cpu")
    return {"measured_step_gib": real["peak_adamw_bytes"] / 2**30,
            "planned_step_gib": planned["peak_adamw_bytes"] / 2**30,
            "flops": planned["flops"]}


def stage_killed(root: Path) -> None:
    from dreamkit import train
    train(_config(root, "killed", checkpointing_steps=1), callbacks=[],
          components=_components())


def stage_resumed(root: Path) -> dict:
    from dreamkit import train
    t0 = time.time()
    result = train(_config(root, "killed", checkpointing_steps=1, resume="auto"), callbacks=[],
                   components=_components())
    return {"steps": [h["step"] for h in result.history], "wall_s": time.time() - t0}


def stage_export(root: Path) -> dict:
    import torch
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file

    from dreamkit.outputs.export import export_single_file
    from dreamkit.models.portable import halve_weights
    ref, killed = root / "reference", root / "killed"
    a = load_file(str(ref / "unet" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(killed / "unet" / "diffusion_pytorch_model.safetensors"))
    differ = max((a[k] - b[k]).abs().max().item() for k in a)
    fp32_gb = _size(ref)
    halve_weights(ref)  # what save_precision='fp16' (auto on a GPU) writes
    file = export_single_file(str(ref), root / "model.safetensors", half=True)
    t0 = time.time()
    pipe = StableDiffusionPipeline.from_single_file(str(file), config=str(ref),
                                                    local_files_only=True)
    w = pipe.unet.conv_in.weight.detach()
    same = torch.equal(w.half(), a["conv_in.weight"].half())
    from dreamkit.planning.space import parameter_counts
    counts = parameter_counts(_config(root, "reference"))  # on the meta device, from the configs
    frozen = 4 * (counts["vae"] + counts["text_encoder"]) / 2**30
    return {"frozen_vae_text_encoder_gib": frozen,
            "resumed_vs_uninterrupted_max_abs_diff": differ, "model_fp32_gb": fp32_gb,
            "model_fp16_gb": _size(ref), "single_file_fp16_gb": file.stat().st_size / GB,
            "single_file_loaded_s": time.time() - t0, "single_file_weights_match": same}


def _size(folder: Path) -> float:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) / GB


def _child(stage: str, root: Path, until=None) -> tuple[dict | None, float]:
    """Run one stage in a new process; its result and its peak RSS (GB). `until(root)`:
    SIGKILL the process as soon as it returns true."""
    out = root / f"{stage}.json"
    proc = subprocess.Popen([sys.executable, __file__, "--stage", stage, str(root)])
    while True:  # wait4 (not poll, which would reap the child and lose its rusage)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if until is not None and until(root):
            os.kill(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(1)
    proc.returncode = status  # reaped here: Popen must not wait for it again
    rss = usage.ru_maxrss * 1024 / GB  # Linux: KiB
    if status != 0 and not (until is not None and os.WIFSIGNALED(status)):
        raise SystemExit(f"stage {stage} failed (status {status})")
    return (json.loads(out.read_text()) if out.is_file() else None), rss


def _checkpoint_2_done(root: Path) -> bool:
    return (root / "killed" / "checkpoints" / "step_000002" / "progress.json").is_file()


def main() -> int:
    if len(sys.argv) == 4 and sys.argv[1] == "--stage":
        stage, root = sys.argv[2], Path(sys.argv[3])
        result = globals()[f"stage_{stage}"](root)
        if result is not None:
            (root / f"{stage}.json").write_text(json.dumps(result))
        return 0
    import tempfile

    from dreamkit.testing import make_photos
    results = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("FULLSIZE_TMP")) as tmp:
        root = Path(tmp)
        make_photos(root / "photos", n=4, size=512)
        for stage in ("reference", "fp16_path"):
            results[stage], results[f"{stage}_rss_gb"] = _child(stage, root)
            print(stage, results[stage], flush=True)
        _, results["killed_rss_gb"] = _child("killed", root, until=_checkpoint_2_done)
        ckpt = root / "killed" / "checkpoints"
        results["checkpoint_gb"] = _size(ckpt / "step_000002")  # one complete checkpoint
        # what the kill left: a prune in progress leaves .trash-*, removed at the next start
        results["checkpoints_when_killed"] = sorted(p.name for p in ckpt.iterdir())
        results["resumed"], results["resumed_rss_gb"] = _child("resumed", root)
        results["checkpoints_after_end"] = ckpt.is_dir()
        results["export"], results["export_rss_gb"] = _child("export", root)
    (HERE / "fullsize.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
