"""Hooks into the training loop, so notebooks show progress without editing the loop.

Subclass `Callback` and override what you need (minGPT's idea, as a class): `on_step` gets the
step's instance loss, prior loss, learning rate and time; `on_samples` gets the sample images
drawn at fixed seeds; `on_model` gets the pipeline at those steps (evaluate.ScoreCallback). `ProgressBar` (a tqdm bar with ETA) is the default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["StepInfo", "Callback", "ProgressBar", "FunctionCallback"]


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


class Callback:
    def on_train_start(self, config, step_mode: str, reason: str) -> None: ...
    def on_step(self, info: StepInfo) -> None: ...
    def on_samples(self, step: int, images: list, path) -> None: ...
    # The model as it is at a sample step (a pipeline in eval mode): for scoring while training.
    def on_model(self, step: int, pipe) -> None: ...
    def on_checkpoint(self, step: int, path) -> None: ...
    def on_train_end(self, result) -> None: ...


class FunctionCallback(Callback):
    """Wrap plain functions: FunctionCallback(on_step=lambda info: print(info.loss))."""

    def __init__(self, on_step=None, on_samples=None):
        self._step, self._samples = on_step, on_samples

    def on_step(self, info):
        if self._step:
            self._step(info)

    def on_samples(self, step, images, path):
        if self._samples:
            self._samples(step, images, path)


class ProgressBar(Callback):
    """A tqdm bar (notebook-aware) with ETA, showing the two losses as they go."""

    def __init__(self, leave: bool = True):
        self.leave, self.bar = leave, None

    def on_train_start(self, config, step_mode, reason):
        from tqdm.auto import tqdm
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
        self.bar.write(f"step {step}: samples saved to {path}")

    def on_checkpoint(self, step, path):
        self.bar.write(f"step {step}: checkpoint saved to {path}")

    def on_train_end(self, result):
        if self.bar is not None:
            self.bar.close()
        if result.model_dir:
            print(f"model saved to {result.model_dir}")
