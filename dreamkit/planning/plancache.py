"""Plans made once: a measured step is kept by everything it depends on, and reused.

Planning runs the real step on the meta device (seconds for SD 1.5, tens of seconds for SDXL
at 1024 px). Its figures depend only on the model's configs, the settings that change shapes
or what is kept in memory (PLAN_FIELDS), the step mode, the measuring code and the library
versions, so the second `dreamkit train` with the same model and settings (after a Colab
disconnect, with another step count or learning rate) reuses them (core/keep.py: in this
process, and from DREAMKIT_CACHE/plans). A plan of a hub id that could not be read here
(planned from dreamkit's shipped configs, and saying so) is reused only while the id still
cannot be read: once it can (online, or in the Hub cache), it is planned from its own configs.
"""

from __future__ import annotations

from pathlib import Path

from ..core.keep import kept, key_of
from .shapes import read_here

__all__ = ["PLAN_FIELDS", "plan_key", "cached_measure", "model_configs"]

# The TrainConfig fields a planned step reads (planner._measure_step, memory.full_step_peak)
PLAN_FIELDS = ("pretrained_model_name_or_path", "resolution", "train_batch_size",
               "with_prior_preservation", "use_lora", "lora_rank", "lora_alpha",
               "lora_target_modules", "gradient_checkpointing", "optimizer_in_backward",
               "use_8bit_adam", "cache_latents", "precompute_text_embeddings",
               "train_text_encoder", "mixed_precision", "optimizer", "use_dora", "lora_dropout")
MEASURING_CODE = ("planning/planner.py", "planning/memory.py", "planning/meta_ops.py",
                  "planning/shapes.py", "training/step.py", "training/loss.py",
                  "training/optim.py", "models/lora.py", "core/precision.py")


def model_configs(model: str) -> str:
    """A local model's part configs (their text), or the hub id itself."""
    folder = Path(model).expanduser()
    texts = [(folder / part / "config.json").read_text()
             for part in ("unet", "vae", "text_encoder", "text_encoder_2")
             if (folder / part / "config.json").is_file()]
    return "\n".join(texts) if texts else model


def plan_key(config, mode: str) -> str:
    what = {f: getattr(config, f) for f in PLAN_FIELDS}
    what.update(mode=mode, model=model_configs(config.pretrained_model_name_or_path))
    return key_of(what, MEASURING_CODE)


def cached_measure(config, mode: str, measure) -> tuple[dict, int, str]:
    """measure(config, mode) -> (parts, flops, assumed), made once per key."""
    model = config.pretrained_model_name_or_path
    parts, flops, assumed = kept("plans", plan_key(config, mode),
                                 lambda: list(measure(config, mode)),
                                 accept=lambda value: not value[2] or not read_here(model))
    return parts, flops, assumed
