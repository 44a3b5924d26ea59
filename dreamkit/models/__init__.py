"""models: Stable Diffusion's parts, loaded, adapted and written in other tools' layouts.

    source.py    is a path a model folder? (checked before anything loads)
    loading.py   tokenizer, text encoder, VAE, UNet, scheduler; freezing; pipelines
    sdxl.py      SDXL's second text encoder and extra conditions
    lora.py      LoRA adapters (peft): added, saved as diffusers and kohya files, loaded
    layouts.py   key names of the original SD layout (one .safetensors for AUTOMATIC1111)
    portable.py  what older diffusers/transformers releases read
    tokens.py    is the identifier one rare token? rare ones suggested
"""

# `from dreamkit.models import load_pipeline`: the flat layout's models.py is loading.py now


def __getattr__(name: str):
    from . import loading
    if name in loading.__all__ or name == "quiet_loading":
        return getattr(loading, name)
    raise AttributeError(f"module 'dreamkit.models' has no attribute {name!r}")
