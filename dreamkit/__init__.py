"""dreamkit: DreamBooth for Stable Diffusion, step by step.

The package behind the notebooks, in layers that import only downwards (README, "The parts"):

    core/  storage/  models/  outputs/  inputs/  training/  planning/  evaluation/  toy/  ui/

The loop is dreamkit/training/loop.py. The public names are importable from here and load on
first use, so `import dreamkit` is quick (torch, diffusers and transformers load only when a
function that needs them is called).
"""

from __future__ import annotations

import importlib

from .core.noise import quiet_known_warnings
from .old_names import OLD_NAMES, install

__version__ = "0.1.0"

_PUBLIC = {  # name -> the module that defines it
    "TrainConfig": "core.config", "DreamkitError": "core.errors", "ConfigError": "core.errors",
    "ImageError": "core.errors", "ModelError": "core.errors", "Callback": "core.callbacks",
    "FunctionCallback": "core.callbacks", "ProgressBar": "core.callbacks",
    "StepInfo": "core.callbacks", "train": "training.loop", "generate": "outputs.sample",
    "load_components": "models.loading", "generate_class_images": "inputs.prior",
    "find_images": "inputs.photos", "check_photos": "inputs.doctor",
    "fix_photos": "inputs.doctor", "check_identifier": "models.tokens",
    "suggest_identifiers": "models.tokens",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str):
    """Load a public name, or an old module name (old_names.py), on first use."""
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value  # once: later lookups do not come here
        return value
    if name in OLD_NAMES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'dreamkit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


install()  # `import dreamkit.planner` and the other old names keep working
quiet_known_warnings()  # library notes that mean nothing here (dreamkit.core.noise)
