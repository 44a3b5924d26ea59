"""Hooks into the training loop, so notebooks show progress without editing the loop.

Subclass `Callback` and override what you need (minGPT's idea, as a class): `on_step` gets the
step's instance loss, prior loss, learning rate and time; `on_samples` gets the sample images
drawn at fixed seeds; `on_model` gets the pipeline at those steps (scoring.ScoreCallback);
`on_message` gets every line the loop wants a person to read (what it found, warnings, the
memory measured on a GPU). The loop never prints: `ProgressBar` (the default) prints those
lines above its bar, a notebook panel can show them.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

# tqdm: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["StepInfo", "Callback", "ProgressBar", "FunctionCallback", "Events", "warn"]


@dataclass
class StepInfo:
    step: int
    max_steps: int
    loss: float
    instance_loss: float
    prior_loss: float | None
    lr: float
    seconds: float  # this step's wall time
    elapsed: float  # since training started

    def as_dict(self) -> dict:
        return asdict(self)


def warn(text: str) -> None:
    """The `report` of a function called outside a run when its caller gave none: a Python
    warning (a notebook shows it once, a script can filter it), never a print. In a run every
    line goes to the callbacks' `on_message` instead."""
    warnings.warn(text, UserWarning, stacklevel=3)


class Callback:
    def on_train_start(self, config, step_mode: str, reason: str) -> None: ...
    def on_message(self, text: str) -> None: ...
    def on_step(self, info: StepInfo) -> None: ...
    def on_samples(self, step: int, images: list, path) -> None: ...
    # The model as it is at a sample step (a pipeline in eval mode): for scoring while training.
    def on_model(self, step: int, pipe) -> None: ...
    def on_checkpoint(self, step: int, path) -> None: ...
    def on_train_end(self, result) -> None: ...


EVENTS = tuple(n for n in vars(Callback) if n.startswith("on_"))


class Events:
    """The callbacks of one run, called as one: `events.on_step(info)` calls every callback's
    `on_step(info)` in order; `events.say(text)` is `on_message`."""

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:  # a misspelled hook would never be called: say so now
            unknown = [n for n in dir(type(cb)) if n.startswith("on_") and n not in EVENTS]
            if unknown:
                raise AttributeError(f"{type(cb).__name__}.{unknown[0]} is not a callback "
                                     f"event; the events are {', '.join(EVENTS)}")

    def __getattr__(self, name: str):
        if name not in EVENTS:  # a misspelled event would otherwise reach no callback
            raise AttributeError(f"{name!r} is not a callback event; the events are "
                                 f"{', '.join(EVENTS)}")

        def call(*args):
            for cb in self.callbacks:
                hook = getattr(cb, name, None)  # a callback may implement only some events
                if hook is not None:
                    hook(*args)
        return call

    def say(self, text: str) -> None:
        self.on_message(text)


class FunctionCallback(Callback):
    """Wrap plain functions: FunctionCallback(on_step=lambda info: print(info.loss))."""

    def __init__(self, on_step=None, on_samples=None, on_message=None):
        self._step, self._samples, self._message = on_step, on_samples, on_message

    def on_step(self, info):
        if self._step:
            self._step(info)

    def on_samples(self, step, images, path):
        if self._samples:
            self._samples(step, images, path)

    def on_message(self, text):
        if self._message:
            self._message(text)


class ProgressBar(Callback):
    """A tqdm bar (notebook-aware) with ETA, showing the two losses as they go; the loop's
    messages are printed above it."""

    def __init__(self, leave: bool = True):
        self.leave, self.bar = leave, None

    def on_message(self, text):
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text)

    def on_train_start(self, config, step_mode, reason):
        from tqdm.auto import tqdm  # tqdm.auto picks the notebook bar inside Jupyter
        print(f"step mode: {step_mode} ({reason})")
        self.bar = tqdm(total=config.max_train_steps, desc="training", unit="step",
                        leave=self.leave)

    def on_step(self, info):
        post = {"loss": f"{info.instance_loss:.4f}"}
        if info.prior_loss is not None:
            post["prior"] = f"{info.prior_loss:.4f}"
        post["lr"] = f"{info.lr:.1e}"
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(info.step - self.bar.n)  # a resumed run starts part-way

    def on_samples(self, step, images, path):
        self.on_message(f"step {step}: samples saved to {path}")

    def on_checkpoint(self, step, path):
        self.on_message(f"step {step}: checkpoint saved to {path}")

    def on_train_end(self, result):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if result.model_dir:
            print(f"model saved to {result.model_dir}")
