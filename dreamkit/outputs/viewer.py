"""Pictures instead of numbers: image grids and loss curves."""

from __future__ import annotations

import math
from pathlib import Path

# matplotlib: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["image_grid", "show_grid", "plot_losses", "figure_image"]


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


def show_grid(images, titles=None, cols: int = 4, size: float = 2.5):
    """A matplotlib figure of images with titles (for notebooks)."""
    import matplotlib.pyplot as plt

    rows = math.ceil(len(images) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(images[k])
            if titles:
                ax.set_title(titles[k], fontsize=8)
    fig.tight_layout()
    return fig


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
        fig.savefig(path, dpi=100)
    return fig


def figure_image(fig, dpi: int = 100):
    """A matplotlib Figure as a PIL image. Notebooks show a PIL image as a picture in any
    context, a bare Figure only once pyplot has set up the inline backend (in a widget's
    output after a kernel restart it would print "<Figure size ...>")."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    buf.seek(0)
    return Image.open(buf)
