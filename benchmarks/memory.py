"""Peak memory of one full training step (forward, backward, optimizer step) of the full-size
SD 1.5 UNet, counted on the meta device: the plain step vs the optimizer step inside backward.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/memory.py        # writes benchmarks/memory.json

The UNet (859.5 M parameters, dreamkit/configs/sd15_unet.json) is built on the meta device, so
tensors have shapes and no data; `LiveTensorTracker` counts the peak of live tensor bytes. The
optimizer has taken one step before the measured one, so its states exist, as in a real run.
Batch 1 + 1 (prior preservation) at 512 px, fp32 weights and activations, GPU memory-efficient
attention kernel, gradient checkpointing on or off.

torch AdamW's states are measured (8 bytes per weight). bitsandbytes cannot run on meta tensors,
so the 8-bit rows put its states in by arithmetic: 2 bytes per weight plus one fp32 absmax per
block of 256 values per state, i.e. the measured peak minus the difference.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from diffusers import DDPMScheduler, UNet2DConditionModel

from dreamkit import TrainConfig
from dreamkit.memory import full_step_peak, sd15_unet_config

MB = 2**20


def measure(in_backward: bool, checkpointing: bool, latent: int = 64) -> dict:
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(sd15_unet_config())
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear",
                          beta_start=0.00085, beta_end=0.012)
    cfg = TrainConfig(optimizer_in_backward=in_backward, gradient_checkpointing=checkpointing,
                      learning_rate=1e-5)
    r = full_step_peak(unet, sched, cfg, latent, attention="gpu_fp32")
    return {"optimizer_in_backward": in_backward, "gradient_checkpointing": checkpointing,
            **{k.replace("_bytes", "_mb"): round(v / MB, 1) for k, v in r.items()}}


def main() -> int:
    rows = [measure(ib, ck) for ck in (False, True) for ib in (False, True)]
    for r in rows:
        print(json.dumps(r))
    out = Path(__file__).with_name("memory.json")
    out.write_text(json.dumps({"torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
