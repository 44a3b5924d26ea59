"""models: Stable Diffusion's parts, loaded, adapted and written in other tools' layouts.

    source.py    is a path a model folder? (checked before anything loads)
    loading.py   tokenizer, text encoder, VAE, UNet, scheduler; freezing; pipelines
    sdxl.py      SDXL's second text encoder and extra conditions
    lora.py      LoRA adapters (peft): added, saved as diffusers and kohya files, loaded
    layouts.py   key names of the original SD layout (one .safetensors for AUTOMATIC1111)
    portable.py  what older diffusers/transformers releases read
    tokens.py    is the identifier one rare token? rare ones suggested
"""

import importlib
import importlib.util

# `from dreamkit.models import load_pipeline`: the flat layout's models.py is loading.py now


def __getattr__(name: str):
    # Asked for a submodule not imported yet (`from dreamkit.models import source`), this must
    # say no at once so that the import system imports it: `from . import loading` here asked
    # this function for "loading" again while loading.py was being imported, forever.
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        raise AttributeError(name)
    loading = importlib.import_module(f"{__name__}.loading")
    if name in loading.__all__ or name == "quiet_loading":
        return getattr(loading, name)
    raise AttributeError(f"module 'dreamkit.models' has no attribute {name!r}")
