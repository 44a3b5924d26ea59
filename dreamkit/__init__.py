"""dreamkit: DreamBooth for Stable Diffusion, step by step.

The package behind the notebooks. The public names are re-exported here (diffusers and
transformers load only when a function that needs them is called).
"""

from .callbacks import Callback, FunctionCallback, ProgressBar, StepInfo
from .config import TrainConfig
from .data import find_images
from .doctor import check_photos, fix_photos
from .env import quiet_known_warnings
from .errors import ConfigError, DreamkitError, ImageError, ModelError
from .models import load_components
from .prior import generate_class_images
from .sample import generate
from .tokens import check_identifier, suggest_identifiers
# Bound after the submodule import, so `dreamkit.train` is the function, not the module.
from .train import train

__version__ = "0.1.0"
quiet_known_warnings()  # library notes that mean nothing here (dreamkit.env.KNOWN_NOISE)

__all__ = ["TrainConfig", "DreamkitError", "ConfigError", "ImageError", "ModelError",
           "Callback", "FunctionCallback", "ProgressBar", "StepInfo", "train",
           "generate", "load_components", "generate_class_images", "find_images", "check_photos", "fix_photos",
           "check_identifier", "suggest_identifiers", "__version__"]

