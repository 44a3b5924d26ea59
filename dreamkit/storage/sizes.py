"""What a run will write, in bytes, from how many values its model has and what it trains.

Said before a run starts (the notebooks, `plan-memory`) and checked against the free space
where the run goes, so a full Drive stops a run before its first step, not at its first
checkpoint. The counts come from the model's configs on the meta device (planning/space.py) or
from the loaded model (training/bounds.py): one arithmetic for both.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PlannedSizes", "sizes_from_counts", "CLASS_IMAGE_BYTES"]

CLASS_IMAGE_BYTES = {512: 400_000, 1024: 1_500_000}  # a PNG of a photo, roughly


@dataclass
class PlannedSizes:
    checkpoint: int  # bytes of one checkpoint
    model: int  # the final model (or LoRA file)
    class_images: int
    kept_checkpoints: bool
    model_dtype: str

    @property
    def while_running(self) -> int:
        """The most a run holds at once: one checkpoint while the model is being written."""
        return self.class_images + self.checkpoint + self.model

    @property
    def at_the_end(self) -> int:
        return self.class_images + self.model + (self.checkpoint if self.kept_checkpoints else 0)

    def text(self) -> str:
        gb = lambda b: f"{b / 1e9:.1f} GB" if b >= 1e8 else f"{b / 1e6:.0f} MB"  # noqa: E731
        end = "the checkpoint stays (keep_checkpoints)" if self.kept_checkpoints else \
            "the checkpoint is removed once the model is saved"
        return (f"on disk: class images ~{gb(self.class_images)}; one checkpoint at a time "
                f"~{gb(self.checkpoint)}; the final model ~{gb(self.model)} "
                f"({self.model_dtype}); at most ~{gb(self.while_running)} while it runs; "
                f"~{gb(self.at_the_end)} at the end ({end})")


def sizes_from_counts(counts: dict, config) -> PlannedSizes:
    """`counts`: values per part ("unet", "vae", "text_encoder", ...) and "trained" (what the
    optimizer updates: the UNet, maybe the text encoder, or the LoRA adapters)."""
    state_bytes = 2 if config.use_8bit_adam else 8  # AdamW's two states per trained value
    checkpoint = counts["trained"] * (4 + state_bytes) if config.checkpointing_steps else 0
    per = 2 if config.final_dtype == "fp16" else 4
    model = counts["trained"] * 4 if config.use_lora else \
        sum(v for k, v in counts.items() if k != "trained") * per
    px = 1024 if config.resolution > 768 else 512
    images = config.num_class_images * CLASS_IMAGE_BYTES[px] \
        if config.prior_preservation else 0
    return PlannedSizes(checkpoint, model, images, config.keep_checkpoints,
                        "LoRA adapters" if config.use_lora else config.final_dtype)
