"""Peak memory of one full training step (forward, backward, optimizer step) of the full-size
SD 1.5 UNet, counted on the meta device: the plain step vs the optimizer step inside backward.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/memory.py        # writes benchmarks/memory.json

The UNet (859.5 M parameters, dreamkit/planning/configs/sd15_unet.json) is built on the meta device, so
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
from dreamkit.planning.memory import full_step_peak
from stepmem import sd15_unet_config  # benchmarks/stepmem.py

MB = 2**20


def measure(in_backward: bool, checkpointing: bool, latent: int = 64) -> dict:
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(sd15_unet_config())
    cfg = TrainConfig(optimizer_in_backward=in_backward, gradient_checkpointing=checkpointing,
                      learning_rate=1e-5)
    r = full_step_peak(unet, _sched(), cfg, latent, attention="gpu_fp32")
    return {"config": f"full UNet fp32, in_backward={in_backward}, "
                      f"checkpointing={checkpointing}",
            **{k.replace("_bytes", "_mb"): round(v / MB, 1) for k, v in r.items()}}


def measure_lora(latent: int = 64) -> dict:
    """LoRA rank 4 on the attention projections, UNet frozen in half precision (bf16 on the
    meta device has fp16's bytes), adapters fp32, gradient checkpointing."""
    from dreamkit.models.lora import UNET_TARGETS, add_lora

    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(sd15_unet_config()).to(torch.bfloat16)
    params = add_lora(unet, 4, 4, UNET_TARGETS)
    cfg = TrainConfig(use_lora=True, gradient_checkpointing=True, learning_rate=1e-4)
    r = full_step_peak(unet, _sched(), cfg, latent, attention="gpu_fp16", params=params)
    return {"config": "LoRA r4, UNet fp16, checkpointing",
            **{k.replace("_bytes", "_mb"): round(v / MB, 1) for k, v in r.items()}}


def _sched():
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear",
                         beta_start=0.00085, beta_end=0.012)


def planner_step_mb(**settings) -> float:
    """The planner's figure for the same step: its parts minus what the step above does not
    hold (frozen VAE/text encoder, slack, CUDA context)."""
    from dreamkit.planning.planner import plan

    p = plan(TrainConfig(class_noun="dog", with_prior_preservation=True, **settings),
             gpu="T4", suggest=False)
    left_out = ("frozen VAE + text encoder", "allocator slack (5%)", "CUDA context")
    return round(sum(v for k, v in p.parts.items() if k not in left_out) / MB, 1)


def main() -> int:
    rows = [measure(ib, ck) for ck in (False, True) for ib in (False, True)]
    for r, (ck, ib) in zip(rows, [(c, i) for c in (False, True) for i in (False, True)]):
        r["planner_mb"] = planner_step_mb(optimizer_in_backward=ib, gradient_checkpointing=ck)
        r["planner_8bit_mb"] = planner_step_mb(optimizer_in_backward=ib,
                                               gradient_checkpointing=ck, use_8bit_adam=True)
    lora = measure_lora()
    lora["planner_mb"] = planner_step_mb(use_lora=True, mixed_precision="fp16",
                                         gradient_checkpointing=True, learning_rate=1e-4)
    rows.append(lora)
    for r in rows:
        print(json.dumps(r))
    out = Path(__file__).with_name("memory.json")
    out.write_text(json.dumps({"torch": torch.__version__, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
