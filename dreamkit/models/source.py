"""Where a model comes from: a hub id or a local folder, and whether that folder is a model.

Checked before anything loads, so a typo in a path is one line that says what is wrong (not a
hub lookup of the path, nor a size mismatch after minutes of loading).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import ModelError
from .sdxl import is_sdxl

__all__ = ["PARTS", "looks_local", "check_local_folder", "check_model_source"]

PARTS = ("tokenizer", "text_encoder", "vae", "unet", "scheduler")


def looks_local(name_or_path: str) -> bool:
    """A path on this machine rather than a hub id ('user/name')."""
    return Path(name_or_path).expanduser().exists() or name_or_path.startswith((".", "/", "~")) \
        or name_or_path.count("/") > 1 or "\\" in name_or_path


def check_local_folder(name_or_path: str, setting: str = "pretrained_model_name_or_path") -> None:
    """A local model path must be a folder (a typo'd path is not a hub id)."""
    if looks_local(name_or_path) and not Path(name_or_path).expanduser().is_dir():
        raise ModelError(f"{setting}={name_or_path!r} is not a folder; give a hub id like "
                         f"'stable-diffusion-v1-5/stable-diffusion-v1-5' or a folder in the "
                         f"diffusers layout (with model_index.json)")


def check_model_source(name_or_path: str, setting: str = "pretrained_model_name_or_path",
                       allow_pickle: bool = False) -> None:
    """Fail early, with the fix, when a local path is not a diffusers Stable Diffusion folder."""
    path = Path(name_or_path).expanduser()
    if not looks_local(name_or_path):
        return  # a hub id: from_pretrained will fetch (or find it in the cache)
    check_local_folder(name_or_path, setting)
    if not (path / "model_index.json").is_file():
        hint = " (a single .safetensors/.ckpt file must be converted first)" \
            if any(path.glob("*.ckpt")) or any(path.glob("*.safetensors")) else ""
        raise ModelError(f"{setting}={name_or_path!r} is not a diffusers model folder: it has no "
                         f"model_index.json{hint}; give the folder that holds model_index.json, "
                         f"unet/, vae/, text_encoder/, tokenizer/ and scheduler/")
    try:
        kind = json.loads((path / "model_index.json").read_text()).get("_class_name", "")
    except (ValueError, OSError, AttributeError):
        raise ModelError(f"{setting}={name_or_path!r}: model_index.json is not valid JSON; "
                         f"restore it from the model's source") from None
    if "Flux" in kind or "StableDiffusion3" in kind or ("XL" in kind and "Img2Img" in kind):
        raise ModelError(f"{setting}={name_or_path!r} is a {kind} model; this trainer handles "
                         f"Stable Diffusion 1.x/2.x and SDXL text-to-image folders")
    xl = is_sdxl(path)
    parts = PARTS + (("tokenizer_2", "text_encoder_2") if xl else ())
    missing = [p for p in parts if not (path / p).is_dir()]
    if missing:
        what = "an SDXL" if xl else "a Stable Diffusion 1.x/2.x"
        raise ModelError(f"{setting}={name_or_path!r} lacks "
                         f"{', '.join(p + '/' for p in missing)}; this needs {what} folder with "
                         f"{', '.join(parts)}")
    if not allow_pickle:
        pickled = [p for p in ("text_encoder", "vae", "unet")
                   if not any((path / p).glob("*.safetensors"))
                   and any(f.suffix in (".bin", ".ckpt", ".pt") for f in (path / p).iterdir())]
        if pickled:
            raise ModelError(f"{setting}={name_or_path!r}: {', '.join(pickled)}/ hold(s) only "
                             f"pickled weights (.bin), which can run code when loaded; convert "
                             f"them to safetensors, or set allow_pickle=True if you trust where "
                             f"the model came from")
