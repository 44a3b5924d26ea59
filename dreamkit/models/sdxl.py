"""SDXL: what a DreamBooth step does differently from Stable Diffusion 1.x.

- **Two text encoders.** The prompt goes through both (CLIP ViT-L and OpenCLIP ViT-bigG); the
  second-to-last layer of each is concatenated into one context for cross-attention (2048 wide),
  and the second encoder's pooled, projected vector is an extra condition.
- **Size and crop conditions ("time ids").** SDXL was told, for every training picture, its
  original size, where it was cropped and the target size: (h, w, top, left, h, w). Our photos
  are centre-cropped and resized to `resolution`, so we say exactly that: (r, r, 0, 0, r, r),
  which is also what the pipeline asks for when it generates at r×r.
- **1024 px and the VAE.** SDXL's VAE overflows in fp16 (black or NaN pictures); on a T4 use a
  separate fp16-safe VAE (`pretrained_vae_model_name_or_path`, e.g. madebyollin/sdxl-vae-fp16-fix).

The UNet's forward then takes `added_cond_kwargs={"text_embeds": pooled, "time_ids": ids}`;
everything else (noise, loss, prior preservation, both step modes, LoRA) is the common step.
The text encoders stay frozen here (the usual SDXL DreamBooth LoRA recipe).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..core.prompts import token_ids

# transformers: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["load_sdxl_encoders", "encode_sdxl", "added_cond", "is_sdxl", "unet_config_of"]


def is_sdxl(model) -> bool:
    """SDXL or not, decided here once, from whatever there is: a UNet or its config, loaded
    parts (Components, a pipeline), or a model folder or hub id. SDXL's UNet takes the pooled
    text and the size conditions ("text_time"); a folder is what its model_index.json says
    (the pipeline diffusers assembles from it); a hub id that cannot be read here is judged by
    its name, and the planner says so when it assumes an architecture (planning/shapes.py)."""
    if isinstance(model, (str, Path)):
        index = Path(str(model)).expanduser() / "model_index.json"
        try:
            return "XL" in json.loads(index.read_text()).get("_class_name", "")
        except (ValueError, OSError, AttributeError):
            pass  # no folder, or no readable index: its UNet, else its name
    config = unet_config_of(model)
    if config is not None:
        return config.get("addition_embed_type") == "text_time"
    return "xl" in Path(str(model)).name.lower()


def unet_config_of(model) -> dict | None:
    """The UNet config of a config dict, a UNet, loaded parts, or a local model folder; None
    for a hub id or a folder without unet/config.json."""
    if isinstance(model, dict):
        return model
    if hasattr(model, "unet"):  # Components, a pipeline
        model = model.unet
    if hasattr(model, "config"):
        return dict(model.config)
    path = Path(str(model)).expanduser() / "unet" / "config.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (ValueError, OSError):
            return None
    return None


def load_sdxl_encoders(name_or_path: str, **kw):
    """The second tokenizer and text encoder (with projection) of an SDXL folder or hub id."""
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    safe = {k: v for k, v in kw.items() if k in ("use_safetensors", "variant")}
    tokenizer_2 = CLIPTokenizer.from_pretrained(name_or_path, subfolder="tokenizer_2",
                                                revision=kw.get("revision"))
    text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(
        name_or_path, subfolder="text_encoder_2", revision=kw.get("revision"),
        dtype=torch.float32, **safe)
    return tokenizer_2, text_encoder_2


@torch.no_grad()
def encode_sdxl(comps, prompts, device, cache: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(context for cross-attention, pooled vector) per prompt, as the SDXL pipeline makes
    them; cached, since the encoders are frozen."""
    for p in dict.fromkeys(prompts):
        if ("xl", p) in cache:
            continue
        states = []
        for tok, enc in ((comps.tokenizer, comps.text_encoder),
                         (comps.tokenizer_2, comps.text_encoder_2)):
            out = enc(token_ids(tok, [p], device), output_hidden_states=True)
            states.append(out.hidden_states[-2])  # the penultimate layer, as SDXL was trained
        pooled = out[0]  # text_encoder_2's projected, pooled vector
        cache[("xl", p)] = (torch.cat(states, dim=-1).float(), pooled.float())
    return (torch.cat([cache[("xl", p)][0] for p in prompts]),
            torch.cat([cache[("xl", p)][1] for p in prompts]))


def added_cond(comps, prompts, device, cache: dict, size) -> dict:
    """The extra conditions of an SDXL UNet for a batch: pooled text and the time ids
    (original size, crop's top-left, target size); `size`: a side, or (height, width) of an
    aspect-ratio bucket."""
    _, pooled = encode_sdxl(comps, prompts, device, cache)
    h, w = (size, size) if isinstance(size, int) else size
    ids = torch.tensor([[h, w, 0, 0, h, w]], dtype=pooled.dtype, device=device)
    return {"text_embeds": pooled, "time_ids": ids.repeat(len(prompts), 1)}
