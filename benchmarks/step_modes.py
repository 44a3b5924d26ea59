"""One-pass vs two-pass DreamBooth steps: seconds per step and peak live-tensor bytes.

    python benchmarks/step_modes.py                 # tiny model (real) + SD 1.5 UNet (meta)
    python benchmarks/step_modes.py --full-timing   # also time real full-size fp32 steps (~4 min)

Memory is the peak of live tensor bytes during one step (weights + gradients + activations, no
optimizer state), counted by dreamkit.planning.memory.LiveTensorTracker. The full-size SD 1.5 UNet
(859.5 M parameters, random weights from dreamkit/planning/configs/sd15_unet.json) is measured on the
meta device with the GPU's fp32 attention kernel (memory-efficient SDPA), batch 1 + 1 at 512 px.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

from dreamkit.training.step import dreambooth_backward
from stepmem import sd15_unet_config, step_peak_bytes  # benchmarks/stepmem.py

MODES = ("one_pass", "two_pass")


def scheduler():
    return DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                         num_train_timesteps=1000, steps_offset=1)


def time_steps(unet, latent_size: int, mode: str, steps: int, warmup: int = 1) -> float:
    g = torch.Generator().manual_seed(0)
    c = unet.config
    x = torch.randn(2, c.in_channels, latent_size, latent_size, generator=g)
    text = torch.randn(2, 77, c.cross_attention_dim, generator=g)
    noise = torch.randn(x.shape, generator=g)
    t = torch.randint(0, 1000, (2,), generator=g)
    sched = scheduler()
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        unet.zero_grad(set_to_none=True)
        dreambooth_backward(unet, sched, x, text, noise, t, n_instance=1, mode=mode)
    return (time.perf_counter() - start) / steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--full-timing", action="store_true", help="time real full-size fp32 steps")
    ap.add_argument("--out", default=str(Path(__file__).with_name("step_modes.json")))
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    rows = []

    from dreamkit.testing import make_tiny_sd
    with tempfile.TemporaryDirectory() as tmp:
        tiny_cfg = dict(UNet2DConditionModel.load_config(str(make_tiny_sd(Path(tmp)) / "unet")))
    tiny = UNet2DConditionModel.from_config(tiny_cfg)
    for latent in (16, 64):
        for mode in MODES:
            mem = step_peak_bytes(tiny, scheduler(), latent, mode, attention="cpu")
            sec = time_steps(tiny, latent, mode, steps=10 if latent == 16 else 3)
            rows.append({"model": "tiny (1.0 M)", "pixels": latent * 2, "where": "CPU, real tensors",
                         **mem.as_mb(), "sec_per_step": round(sec, 3)})
            print(rows[-1], flush=True)

    for ckpt in (False, True):
        with torch.device("meta"):
            full = UNet2DConditionModel.from_config(sd15_unet_config())
        if ckpt:
            full.enable_gradient_checkpointing()
        full.train()
        for mode in MODES:
            mem = step_peak_bytes(full, scheduler(), 64, mode, attention="gpu_fp32")
            rows.append({"model": "SD 1.5 UNet (859.5 M)" + (" + grad. ckpt" if ckpt else ""),
                         "pixels": 512, "where": "meta (GPU fp32 attention)", **mem.as_mb(),
                         "sec_per_step": None})
            print(rows[-1], flush=True)

    if args.full_timing:
        full = UNet2DConditionModel.from_config(sd15_unet_config()).train()
        for mode in MODES:
            sec = time_steps(full, 64, mode, steps=1, warmup=0)
            rows.append({"model": "SD 1.5 UNet (859.5 M)", "pixels": 512,
                         "where": "CPU fp32, real tensors", "mode": mode, "sec_per_step": round(sec, 1)})
            print(rows[-1], flush=True)

    meta = {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "command": " ".join(["python"] + sys.argv)}
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
