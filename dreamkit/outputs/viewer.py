"""Pictures instead of numbers: image grids and loss curves."""

from __future__ import annotations

import math
from pathlib import Path

# matplotlib: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["image_grid", "show_grid", "plot_losses", "figure_image", "Picture"]

# widest picture a notebook keeps: wider is what the page shrinks anyway, and a saved notebook
# (on Drive) grows by every pixel; the files on disk keep all of them
MAX_SHOWN_WIDTH = 1200


def image_grid(images, rows: int | None = None, cols: int | None = None, pad: int = 2,
               background=(255, 255, 255), labels=None):
    """Paste equally sized PIL images into one grid image, row by row. `labels`: one text per
    row (its prompt, "base"/"fine-tuned"), written in the picture, left of the row, so a grid
    explains itself when it is shared without its notebook."""
    from PIL import Image

    if not images:
        raise ValueError("image_grid needs at least one image")
    n = len(images)
    if rows is None and cols is None:
        cols = math.ceil(math.sqrt(n))
    if cols is None:
        cols = math.ceil(n / rows)
    rows = math.ceil(n / cols)
    w, h = images[0].size
    grid = Image.new("RGB", (cols * w + (cols - 1) * pad, rows * h + (rows - 1) * pad), background)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        grid.paste(img.convert("RGB").resize((w, h)), (c * (w + pad), r * (h + pad)))
    return _with_labels(grid, labels, h, pad, background) if labels else grid


def _with_labels(grid, labels, row_height: int, pad: int, background):
    """The grid with a column of row labels on its left (one line each, at most 48 letters)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    texts = [t if len(t) <= 48 else t[:47] + "…" for t in map(str, labels)]
    draw = ImageDraw.Draw(grid)
    width = max(int(draw.textlength(t, font=font)) for t in texts) + 8
    out = Image.new("RGB", (grid.width + width, grid.height), background)
    out.paste(grid, (width, 0))
    draw = ImageDraw.Draw(out)
    for r, text in enumerate(texts):
        top = r * (row_height + pad) + max(0, row_height // 2 - 6)
        draw.text((4, top), text, fill=(20, 20, 20), font=font)
    return out


def show_grid(images, titles=None, cols: int = 4, size: int = 160):
    """Pictures `size` px wide with a title under each, `cols` a row: shown in a notebook as
    one compact picture (JPEG: photos) and returned as a PIL image."""
    from PIL import Image, ImageDraw, ImageFont

    if not images:
        raise ValueError("show_grid needs at least one image")
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    longest = max((measure.textlength(str(t), font=font) for t in titles or ()), default=0)
    w = int(min(max(size, longest + 6), 2 * size))  # wide enough for the titles, mostly
    h = max(1, round(w * images[0].height / images[0].width))
    line = 14 if titles else 0
    rows = math.ceil(len(images) / cols)
    grid = Image.new("RGB", (min(cols, len(images)) * (w + 4), rows * (h + line + 4)), "white")
    draw = ImageDraw.Draw(grid)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        x, y = c * (w + 4), r * (h + line + 4)
        small = img.width * 2 <= w  # the toy world's 64 px pictures: crisp pixels, not blur
        grid.paste(img.convert("RGB").resize((w, h), Image.Resampling.NEAREST if small
                                             else Image.Resampling.LANCZOS), (x, y))
        if titles:
            text = str(titles[k])
            while len(text) > 1 and draw.textlength(text, font=font) > w:
                text = text[:-2] + "…"
            draw.text((x + 2, y + h + 1), text, fill=(20, 20, 20), font=font)
    _show(Picture(grid, fmt="jpeg"))
    return grid


def _show(obj) -> None:
    """display() in a notebook; nothing elsewhere (a script has no place for pictures)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is not None:
        display(obj)


class Picture:
    """A PIL image as a notebook keeps it: in one encoding (IPython stores a bare PIL image
    twice, as PNG and as JPEG), at most `max_width` px wide (MAX_SHOWN_WIDTH), `scale` times
    larger first when asked (nearest pixels: the toy world's 64 px pictures stay crisp)."""

    def __init__(self, image, max_width: int = MAX_SHOWN_WIDTH, fmt: str = "png",
                 scale: int = 1):
        from PIL import Image

        if scale > 1:
            image = image.resize((image.width * scale, image.height * scale),
                                 Image.Resampling.NEAREST)
        if image.width > max_width:
            image = image.resize((max_width, max(1, round(image.height * max_width
                                                          / image.width))),
                                 Image.Resampling.LANCZOS)
        self.image, self.fmt = image.convert("RGB"), fmt

    @property
    def size(self):
        return self.image.size

    def _encoded(self, fmt: str):
        if fmt != self.fmt:
            return None  # IPython skips a format whose method returns None
        import io
        buf = io.BytesIO()
        self.image.save(buf, format=fmt, **({"quality": 85} if fmt == "jpeg" else {}))
        return buf.getvalue()

    def _repr_png_(self):
        return self._encoded("png")

    def _repr_jpeg_(self):
        return self._encoded("jpeg")


def plot_losses(history, path=None, smooth: int = 10):
    """Instance and prior losses per step, raw and smoothed, on one chart; saved if `path`."""
    # A bare Figure needs no GUI backend (safe in CI and in training threads); notebooks
    # display it like any other figure.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    steps = [h["step"] for h in history]
    for key, label, color in (("instance_loss", "instance loss", "tab:blue"),
                              ("prior_loss", "prior loss (class images)", "tab:orange")):
        ys = [h[key] for h in history if h.get(key) is not None]
        if not ys:
            continue
        xs = steps[:len(ys)]
        ax.plot(xs, ys, color=color, alpha=0.3, linewidth=0.8)
        k = max(1, min(smooth, len(ys)))
        avg = [sum(ys[max(0, i - k + 1):i + 1]) / len(ys[max(0, i - k + 1):i + 1])
               for i in range(len(ys))]
        ax.plot(xs, avg, color=color, label=f"{label} (mean of {k})")
    ax.set_xlabel("step")
    ax.set_ylabel("MSE")
    ax.set_title("DreamBooth losses")
    if history:
        ax.legend()
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure_image(fig).save(path)  # one draw into Agg's buffer, written as a PNG
    return fig


def figure_image(fig, dpi: int = 100):
    """A matplotlib Figure as a PIL image. Notebooks show a PIL image as a picture in any
    context, a bare Figure only once pyplot has set up the inline backend (in a widget's
    output after a kernel restart it would print "<Figure size ...>")."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    # Drawn into Agg's pixel buffer, not saved as a PNG and read back: the live loss curve is
    # redrawn many times a run, and the PNG round trip was half of each redraw's time.
    fig.set_dpi(dpi)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")
