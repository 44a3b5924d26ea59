"""Mixed precision, decided once: what runs in half precision, who scales the loss, and whether
autocast keeps its weight cache.

The run (training/run.py), the optimizer (training/optim.py), the frozen parts
(models/loading.py) and the planner read `config.precision`; no other place compares
`mixed_precision` to decide something.
"""

from __future__ import annotations

from dataclasses import dataclass

# torch: imported where used, so that TrainConfig (which carries a Precision) stays quick to import
__all__ = ["Precision"]


@dataclass(frozen=True)
class Precision:
    mixed_precision: str = "no"  # TrainConfig.mixed_precision: "no", "fp16" or "bf16"
    optimizer_in_backward: bool = False
    gradient_checkpointing: bool = False

    @classmethod
    def of(cls, config) -> "Precision":
        return cls(config.mixed_precision, config.optimizer_in_backward,
                   config.gradient_checkpointing)

    @property
    def mixed(self) -> bool:
        """The UNet's matmuls run in fp16/bf16 under autocast; trained weights stay fp32."""
        return self.mixed_precision in ("fp16", "bf16")

    @property
    def arithmetic(self) -> str:
        """What the matmuls run in: 'fp32', 'fp16' or 'bf16' (the planner's time floor)."""
        return self.mixed_precision if self.mixed else "fp32"

    @property
    def bytes_per_value(self) -> int:
        """Bytes of a frozen weight or an activation."""
        return 2 if self.mixed else 4

    @property
    def dreamkit_scales_loss(self) -> bool:
        """fp16 with the update inside backward: dreamkit scales the loss itself
        (optim.LossScale, with a check pass) and accelerate's GradScaler stays off, since it
        cannot see the gradients the per-parameter hooks already freed."""
        return self.mixed_precision == "fp16" and self.optimizer_in_backward

    @property
    def autocast_cache(self) -> bool:
        """autocast's cache keeps an fp16 copy of every weight until the forward ends (SD 1.5:
        1.6 GiB); with gradient checkpointing it is off: each op makes its copy, and the
        recomputation drops it."""
        return not (self.mixed and self.gradient_checkpointing)

    def frozen_dtype(self):
        """The torch dtype of frozen parts (VAE, frozen text encoders) and of autocast."""
        import torch
        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.mixed_precision,
                                                                   torch.float32)
