"""Library messages that mean nothing to a dreamkit user, hidden when dreamkit is imported,
so that a notebook's output starts with what matters; every other warning still shows."""

from __future__ import annotations

import logging
import warnings

__all__ = ["quiet_known_warnings", "KNOWN_NOISE"]

# logger -> the text its harmless message contains
KNOWN_NOISE = {
    # diffusers needs no torchvision: the PIL image processor it falls back to is what we use
    "transformers.utils.import_utils": "requires torchvision (not installed)",
    # an optional 4-bit CPU kernel; 8-bit AdamW does not use it
    "bitsandbytes.backends.cpu.ops": "kernels-community",
}


def _not_noise(text: str):
    return lambda record: text not in record.getMessage()


def quiet_known_warnings() -> None:
    """Filter KNOWN_NOISE (called once when dreamkit is imported)."""
    for name, text in KNOWN_NOISE.items():
        logger = logging.getLogger(name)
        if not any(getattr(f, "dreamkit", False) for f in logger.filters):
            keep = _not_noise(text)
            keep.dreamkit = True
            logger.addFilter(keep)
    # peft, saving a text encoder's LoRA: dreamkit never changes the vocabulary
    warnings.filterwarnings("ignore", message="Could not find a config file in .* will assume "
                            "that the vocabulary was not modified")
