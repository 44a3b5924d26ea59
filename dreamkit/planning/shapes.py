"""A model's parts as shapes: built on the meta device from its configs, no weights loaded.

The planner runs the training step on them (memory, FLOPs), and space.py counts the files a run
will write. The configs come from a local model folder, the Hub cache, or, for hub ids that
cannot be read here (offline), the SD 1.5 and SDXL base configs dreamkit ships.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch

# diffusers, huggingface_hub, transformers: imported where used (heavy), so `import dreamkit` stays quick
__all__ = ["part_config", "meta_models"]


def part_config(model: str, part: str, fallback: str) -> dict:
    """A part's config.json from a local folder or the hub cache; SD 1.5's as the fallback for
    hub ids that cannot be read here (said in the plan)."""
    path = Path(model) / part / "config.json"
    if path.is_file():
        return json.loads(path.read_text())
    try:
        from huggingface_hub import hf_hub_download
        return json.loads(Path(hf_hub_download(model, f"{part}/config.json")).read_text())
    except Exception:  # offline, unknown id: the shipped SD 1.5 or SDXL base configs
        if "xl" in model.lower():
            fallback = {"unet": "sdxl_unet.json", "text_encoder_2": "sdxl_text_encoder_2.json"
                        }.get(part, fallback)
        return json.loads(resources.files("dreamkit.planning").joinpath(f"configs/{fallback}").read_text())


def meta_models(model: str) -> dict:
    """The model's UNet, VAE and text encoder(s) on the meta device, built from its configs
    (shapes, no weights): what the plan and the disk sizes (space.py) count."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    def clip(part: str, fallback: str, cls):
        cfg = part_config(model, part, fallback)
        return cls(CLIPTextConfig(**{k: v for k, v in cfg.items() if not k.startswith("_")}))
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(part_config(model, "unet", "sd15_unet.json"))
        parts = {"unet": unet,
                 "vae": AutoencoderKL.from_config(part_config(model, "vae", "sd15_vae.json")),
                 "text_encoder": clip("text_encoder", "sd15_text_encoder.json", CLIPTextModel)}
        if getattr(unet.config, "addition_embed_type", None) == "text_time":  # SDXL's second
            parts["text_encoder_2"] = clip("text_encoder_2", "sdxl_text_encoder_2.json",
                                           CLIPTextModelWithProjection)
    return parts
