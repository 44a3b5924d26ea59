"""Live feedback in a notebook: loss curves and sample grids that update in place.

    result = train(config, callbacks=[ProgressBar(), LiveView(every=10)])

`LiveView` keeps two display areas under the cell: the instance and prior loss curves
(viewer.plot_losses, redrawn every `every` steps) and the newest sample grid (drawn at fixed
seeds every `config.sample_every` steps), each replaced in place rather than appended, so the
cell shows the run as it is now. The loop's messages are kept in `.messages` (ProgressBar
prints them above its bar). Outside a notebook it draws nothing.
"""

from __future__ import annotations

from ..core.callbacks import Callback
from ..outputs.viewer import Picture, figure_image, plot_losses

# IPython: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["LiveView"]


class LiveView(Callback):
    """`widget=True` draws into picture widgets instead of display areas: inside an
    ipywidgets Output (a button's run, as in the classroom) display areas are not replaced
    in place, picture widgets are."""

    def __init__(self, every: int = 10, scale: int | None = None, widget: bool = False):
        self.every, self.scale, self.widget = every, scale, widget
        self.history, self.updates, self.messages = [], 0, []
        self._loss = self._samples = None

    def _display(self, obj, handle):
        """Show the PIL image `obj` in place of what `handle` showed (None: a new area)."""
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return None
        if get_ipython() is None:
            return None  # not in a notebook: the progress bar is enough
        shown = obj if isinstance(obj, Picture) else Picture(obj)  # one PNG, <= 1200 px wide
        if self.widget:
            import ipywidgets as w
            if handle is None:
                handle = w.Image(format="png")
                display(handle)
            handle.value = shown._repr_png_()
            return handle
        if handle is None:
            return display(shown, display_id=True)
        handle.update(shown)
        return handle

    def on_train_start(self, config, step_mode, reason):
        self.max_steps = config.max_train_steps
        self.messages.append(f"step mode: {step_mode} ({reason})")

    def on_message(self, text):
        self.messages.append(text)

    def on_step(self, info):
        self.history.append(info.as_dict())
        if info.step % self.every == 0 or info.step == self.max_steps:
            self._draw()

    def _draw(self):
        self._loss = self._display(figure_image(plot_losses(self.history)), self._loss)
        self.updates += 1

    def on_samples(self, step, images, path):
        from PIL import Image
        grid = Image.open(path)
        # each picture shown ~128 px high or more (the toy world's are 64 px)
        cell = images[0].height if images else grid.height
        scale = self.scale or max(1, 128 // max(1, cell))
        self._samples = self._display(Picture(grid, scale=scale), self._samples)

    def on_train_end(self, result):
        if self.history:
            self._draw()
