"""A model's parts as shapes: built on the meta device from its configs, no weights loaded.

The planner runs the training step on them (memory, FLOPs), and space.py counts the files a run
will write. The configs come from a local model folder or the Hub (or its cache). A hub id that
cannot be read here (offline, no network) is planned with the SD 1.5 or SDXL base configs
dreamkit ships, and `ModelShapes.assumed` says so: the plan's first line repeats it. An id the
Hub says does not exist is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from ..core.errors import ModelError
from ..models.source import check_local_folder, offline_if_hub_unreachable
from ..models.sdxl import is_sdxl

# diffusers, huggingface_hub, transformers: imported where used (heavy), so `import dreamkit` stays quick
__all__ = ["ModelShapes", "part_config", "meta_models", "read_here"]

SHIPPED = {False: {"unet": "sd15_unet.json", "vae": "sd15_vae.json",
                   "text_encoder": "sd15_text_encoder.json"},
           True: {"unet": "sdxl_unet.json", "vae": "sd15_vae.json",
                  "text_encoder": "sd15_text_encoder.json",
                  "text_encoder_2": "sdxl_text_encoder_2.json"}}


@dataclass
class ModelShapes:
    parts: dict  # "unet", "vae", "text_encoder"(, "text_encoder_2") -> a module on meta
    assumed: str = ""  # set when the configs are dreamkit's shipped ones, not the model's
    sources: dict = field(default_factory=dict)


def part_config(model: str, part: str) -> tuple[dict, str]:
    """A part's config.json and where it came from: the local folder, the Hub (or its cache),
    or, for a hub id that cannot be read here, dreamkit's shipped SD 1.5 / SDXL base config."""
    path = Path(model).expanduser() / part / "config.json"
    if path.is_file():
        return json.loads(path.read_text()), "folder"
    offline_if_hub_unreachable(model)  # else minutes of retries before the shipped config
    try:
        from huggingface_hub import hf_hub_download
        return json.loads(Path(hf_hub_download(model, f"{part}/config.json")).read_text()), "hub"
    except Exception as e:  # offline, no network, not found: which one decides
        if type(e).__name__ in ("RepositoryNotFoundError", "GatedRepoError"):
            raise ModelError(f"pretrained_model_name_or_path={model!r}: the Hub has no such model "
                             f"(or it needs a login); check the spelling, e.g. "
                             f"'stable-diffusion-v1-5/stable-diffusion-v1-5'") from None
        name = SHIPPED[is_sdxl(model)].get(part, SHIPPED[False].get(part))
        text = resources.files("dreamkit.planning").joinpath(f"configs/{name}").read_text()
        return json.loads(text), f"shipped:{_why_unread(e)}"


def read_here(model: str) -> bool:
    """Whether the model's own configs can be read here now (its folder, the Hub or its
    cache), not dreamkit's shipped ones: what was planned from the shipped configs while the
    model could not be read is kept only as long as that holds (plancache.py, space.py)."""
    return not part_config(model, "unet")[1].startswith("shipped")


def _why_unread(e: Exception) -> str:
    if type(e).__name__ == "LocalEntryNotFoundError":
        return "offline, and not in the Hub cache"
    return f"{type(e).__name__}: {str(e).splitlines()[0][:80]}" if str(e) else type(e).__name__


def meta_models(model: str) -> ModelShapes:
    """The model's UNet, VAE and text encoder(s) on the meta device, built from its configs
    (shapes, no weights): what the plan and the disk sizes (space.py) count."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    check_local_folder(model)  # a mistyped path is refused, not planned as SD 1.5
    sources = {}

    def config(part: str) -> dict:
        cfg, sources[part] = part_config(model, part)
        return cfg

    def clip(part: str, cls):
        cfg = config(part)
        return cls(CLIPTextConfig(**{k: v for k, v in cfg.items() if not k.startswith("_")}))
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config("unet"))
        parts = {"unet": unet, "vae": AutoencoderKL.from_config(config("vae")),
                 "text_encoder": clip("text_encoder", CLIPTextModel)}
        if is_sdxl(unet):  # SDXL's second text encoder
            parts["text_encoder_2"] = clip("text_encoder_2", CLIPTextModelWithProjection)
    shipped = sorted({s.split(":", 1)[1] for s in sources.values() if s.startswith("shipped")})
    assumed = ""
    if shipped:
        arch = "SDXL" if is_sdxl(unet) else "SD 1.5"
        why = "'xl' in its name" if is_sdxl(unet) else "no 'xl' in its name"
        assumed = (f"assumed {arch} ({why}): {model!r} could not be read here "
                   f"({', '.join(shipped)}), so dreamkit's {arch} base configs were planned; "
                   f"check the id, or plan a local folder of the model")
    return ModelShapes(parts, assumed, sources)
