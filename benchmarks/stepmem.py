"""Benchmark helpers: the SD 1.5 UNet config and the peak of one DreamBooth step without the
optimizer (benchmarks/step_modes.py, benchmarks/memory.py). The package's planner uses
dreamkit.planning.memory.full_step_peak, which includes the optimizer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import torch

from dreamkit.planning.memory import LiveTensorTracker, fused_attention
from dreamkit.training.step import dreambooth_backward


def sd15_unet_config() -> dict:
    """The SD 1.5 UNet architecture (859,520,964 parameters), shipped with dreamkit."""
    text = resources.files("dreamkit.planning").joinpath("configs/sd15_unet.json").read_text()
    return json.loads(text)


@dataclass
class StepMemory:
    weights: int  # parameters + buffers
    gradients: int  # one full gradient per trained parameter
    peak: int  # weights + everything alive at the worst moment of the step
    mode: str

    @property
    def activations(self) -> int:
        """Peak minus weights and gradients: activations and temporaries."""
        return self.peak - self.weights - self.gradients

    def as_mb(self) -> dict:
        mb = 1 / 2**20
        return {"mode": self.mode, "weights_mb": round(self.weights * mb, 1),
                "gradients_mb": round(self.gradients * mb, 1),
                "activations_mb": round(self.activations * mb, 1),
                "peak_mb": round(self.peak * mb, 1)}


def step_peak_bytes(unet, noise_scheduler, latent_size: int, mode: str, batch: int = 1,
                    text_len: int = 77, attention: str = "cpu") -> StepMemory:
    """Peak live-tensor bytes of one DreamBooth step (instance + class batch, no optimizer).

    Works on real tensors or on a UNet built under `torch.device('meta')`.
    """
    dev = next(unet.parameters()).device
    weights = sum(p.numel() * p.element_size() for p in unet.parameters()) \
        + sum(b.numel() * b.element_size() for b in unet.buffers())
    grads = sum(p.numel() * p.element_size() for p in unet.parameters() if p.requires_grad)
    n = 2 * batch
    inputs = [torch.randn(n, unet.config.in_channels, latent_size, latent_size, device=dev),
              torch.randn(n, text_len, unet.config.cross_attention_dim, device=dev),
              torch.randn(n, unet.config.in_channels, latent_size, latent_size, device=dev),
              torch.randint(0, 1000, (n,), device=dev)]
    unet.zero_grad(set_to_none=True)
    tracker = LiveTensorTracker()
    with fused_attention(attention), tracker:
        dreambooth_backward(unet, noise_scheduler, inputs[0], inputs[1], inputs[2], inputs[3],
                            n_instance=batch, mode=mode)
    input_bytes = sum(t.numel() * t.element_size() for t in inputs)
    unet.zero_grad(set_to_none=True)
    return StepMemory(weights, grads, weights + input_bytes + tracker.peak, mode)


