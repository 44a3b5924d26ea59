"""report_to: the run's numbers and pictures in TensorBoard or Weights & Biases.

Through accelerate's trackers, as diffusers' scripts do (`--report_to tensorboard`): every step's
loss (the instance and the prior parts apart) and learning rate, every sample grid, and the
scores a ScoreCallback measured at that step. TensorBoard writes into `output_dir/logs` (open it
with `tensorboard --logdir output_dir/logs`, or `%tensorboard` in Colab); W&B into the project
"dreamkit" of the logged-in account. history.json, loss.png and the notebooks' live view are
written either way.
"""

from __future__ import annotations

import numpy as np

from ..core.callbacks import Callback
from ..core.errors import ConfigError

__all__ = ["tracker_settings", "Tracking", "PROJECT"]

PROJECT = "dreamkit"


def tracker_settings(config, out) -> dict:
    """Accelerator(...) keywords for config.report_to; a missing package refused in one line."""
    if config.report_to == "none":
        return {}
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    available = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}
    if not available[config.report_to]():
        raise ConfigError("report_to", config.report_to, f"needs the {config.report_to} "
                          f"package: pip install {config.report_to}, or report_to='none' "
                          f"(history.json and loss.png are written anyway)")
    return {"log_with": config.report_to, "project_dir": str(out / "logs")}


def _plain(config) -> dict:
    """The settings trackers can store as hyperparameters (numbers, text, switches)."""
    return {k: v for k, v in config.to_dict().items()
            if isinstance(v, (int, float, str, bool))}


class Tracking(Callback):
    """Hands the run's events to accelerate's trackers (made by start_run)."""

    def __init__(self, accelerator, events, config):
        self.acc, self.events = accelerator, events
        accelerator.init_trackers(PROJECT, config=_plain(config))

    def on_step(self, info):
        values = {"loss": info.loss, "instance_loss": info.instance_loss, "lr": info.lr,
                  "seconds_per_step": info.seconds}
        if info.prior_loss is not None:
            values["prior_loss"] = info.prior_loss
        self.acc.log(values, step=info.step)

    def on_samples(self, step, images, path):
        pixels = np.stack([np.asarray(img.convert("RGB")) for img in images])
        for tracker in self.acc.trackers:
            if tracker.name == "tensorboard":
                tracker.log_images({"samples": pixels}, step, dataformats="NHWC")
            else:
                tracker.log_images({"samples": list(images)}, step)

    def on_model(self, step, pipe):
        """The scores other callbacks measured at this step (a ScoreCallback's curve)."""
        for cb in self.events.callbacks:
            curve = getattr(cb, "curve", None)
            if isinstance(curve, list) and curve and curve[-1].get("step") == step:
                self.acc.log({f"scores/{k}": v for k, v in curve[-1].items()
                              if k != "step" and isinstance(v, (int, float))}, step=step)
