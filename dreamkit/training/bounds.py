"""Settings checked against the model once it is loaded: sizes that a typo makes absurd.

TrainConfig bounds every number for typos alone (core/validate.py); only the model knows what
is sensible for it: the size it was trained at, the width of the layers a LoRA adapts, and how
many bytes the run will write, which must fit where the run goes (a free Drive has 15 GB).
"""

from __future__ import annotations

import shutil

import torch

from ..core.checks import nearest_existing
from ..core.errors import ConfigError, DreamkitError
from ..models.lora import UNET_TARGETS
from ..storage.sizes import sizes_from_counts

__all__ = ["native_size", "lora_widths", "check_against_model", "MAX_SIZE_FACTOR"]

# SD 1.5 (512 px) at 1024 already repeats its subject; at 4× it draws noise and needs 16× the
# memory: a typo or a setting meant for another model
MAX_SIZE_FACTOR = 4


def native_size(comps) -> int:
    """The picture size the model was trained at: latent size × the VAE's scale."""
    return comps.unet.config.sample_size * 2 ** (len(comps.vae.config.block_out_channels) - 1)


def _targeted(unet, targets):
    for name, m in unet.named_modules():
        if isinstance(m, torch.nn.Linear) and any(name == t or name.endswith("." + t)
                                                  for t in targets):
            yield m


def lora_widths(unet, targets) -> list[int]:
    """min(in, out) features of every layer a LoRA adapts: a rank beyond a layer's width adds
    no capacity to it, only size."""
    return [min(m.in_features, m.out_features) for m in _targeted(unet, targets)]


def _counts(config, comps) -> dict:
    count = lambda m: sum(p.numel() for p in m.parameters()) if m is not None else 0  # noqa: E731
    counts = {k: count(getattr(comps, k)) for k in ("unet", "vae", "text_encoder",
                                                    "text_encoder_2")}
    counts["trained"] = counts["unet"] + (counts["text_encoder"] if config.train_text_encoder
                                          else 0)
    if config.use_lora:  # rank × (in + out) values per adapted layer (+ DoRA's magnitudes)
        r = config.lora_rank
        counts["trained"] = sum(r * (m.in_features + m.out_features) + config.use_dora *
                                m.out_features for m in _targeted(
                                    comps.unet, config.lora_target_modules or UNET_TARGETS))
    return counts


def check_against_model(config, comps, out) -> None:
    """Refuse, in one line, a size the model cannot use or a run the disk cannot hold."""
    native = native_size(comps)
    if config.resolution > MAX_SIZE_FACTOR * native:
        raise ConfigError("resolution", config.resolution, f"is more than {MAX_SIZE_FACTOR}× "
                          f"the size this model was trained at ({native} px): pictures fall "
                          f"apart and memory runs out; use {native}")
    if config.use_lora:
        widths = lora_widths(comps.unet, config.lora_target_modules or UNET_TARGETS)
        if widths and config.lora_rank > max(widths):
            raise ConfigError("lora_rank", config.lora_rank, f"is wider than every layer it "
                              f"adapts (the widest has {max(widths)} features), so it adds "
                              f"size and nothing else: use 4-32 (at most {max(widths)})")
    planned = sizes_from_counts(_counts(config, comps), config)
    where = nearest_existing(out)
    free = shutil.disk_usage(where).free
    if free < planned.while_running:
        raise DreamkitError(f"output_dir={str(out)!r}: the run needs about "
                            f"{planned.while_running / 1e9:.2f} GB while it runs "
                            f"({planned.text()}), but {where} has {free / 1e9:.2f} GB free; "
                            f"free space (on Drive: empty the bin), use LoRA, set "
                            f"checkpointing_steps=0, or choose another output_dir")
