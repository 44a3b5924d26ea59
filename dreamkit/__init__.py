"""dreamkit: DreamBooth for Stable Diffusion, step by step.

The package behind the notebooks. The public names are re-exported here; heavy libraries
(torch, diffusers) load only when a function that needs them is called.
"""

from .callbacks import Callback, FunctionCallback, ProgressBar, StepInfo
from .config import TrainConfig
from .errors import ConfigError, DreamkitError, ImageError, ModelError

__version__ = "0.1.0"

__all__ = ["TrainConfig", "DreamkitError", "ConfigError", "ImageError", "ModelError",
           "Callback", "FunctionCallback", "ProgressBar", "StepInfo", "train",
           "generate", "load_components", "generate_class_images", "find_images", "__version__"]


def __getattr__(name):
    # Lazy re-exports: `import dreamkit` stays fast; the heavy modules load on first use.
    lazy = {"train": "train", "generate": "sample", "load_components": "models",
            "generate_class_images": "prior", "find_images": "data"}
    if name in lazy:
        import importlib
        return getattr(importlib.import_module(f".{lazy[name]}", __name__), name)
    raise AttributeError(f"module 'dreamkit' has no attribute {name!r}")
