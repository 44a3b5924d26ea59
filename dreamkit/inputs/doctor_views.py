"""What the photo doctor draws: the crop training takes, and the thumbnails of a report."""

from __future__ import annotations

from PIL import Image, ImageDraw

from ..outputs.viewer import image_grid
from .buckets import bucket_sizes, nearest_bucket
from .photos import open_image

__all__ = ["crop_box", "crop_preview", "trained_box", "draw_grid"]


def crop_box(size, offset: float = 0.0) -> tuple:
    """The square crop of a (w, h) picture; offset -1..1 slides it along the long side
    (0 = centre, as training's centre crop)."""
    w, h = size
    s = min(w, h)
    t = (max(-1.0, min(1.0, float(offset))) + 1) / 2
    left, top = round((w - s) * t), round((h - s) * t)
    return (left, top, left + s, top + s)


def crop_preview(img: Image.Image, box=None, thumb: int = 160) -> Image.Image:
    """A thumbnail with everything outside `box` (default: the centre crop) dimmed."""
    box = box or crop_box(img.size)
    scale = thumb / max(img.size)
    small = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    dim = Image.blend(small, Image.new("RGB", small.size, (0, 0, 0)), 0.6)
    b = tuple(round(v * scale) for v in box)
    dim.paste(small.crop(b), b[:2])
    ImageDraw.Draw(dim).rectangle(b, outline=(255, 255, 255))
    return dim


_COLOURS = {"problem": (220, 40, 40), "warning": (235, 150, 20), "note": (60, 120, 220),
            None: (40, 170, 60)}


def trained_box(size, report) -> tuple:
    """What of a (w, h) photo training sees: its aspect-ratio bucket's centre, the square
    centre crop, or all of it."""
    if report.aspect_buckets:
        bw, bh = nearest_bucket(size, bucket_sizes(report.resolution))
        scale = min(size[0] / bw, size[1] / bh)
        w, h = round(bw * scale), round(bh * scale)
        left, top = (size[0] - w) // 2, (size[1] - h) // 2
        return (left, top, left + w, top + h)
    return crop_box(size) if report.center_crop else (0, 0, *size)


def draw_grid(report, thumb: int) -> Image.Image:
    """Thumbnails as training sees them (outside what it sees dimmed), framed by the worst
    flag's colour, with the file name and the flags."""
    tiles = []
    for p in report.photos:
        tile = Image.new("RGB", (thumb + 8, thumb + 44), (255, 255, 255))
        if p.size is not None:
            prev = crop_preview(open_image(p.path), trained_box(p.size, report), thumb)
            tile.paste(prev, (4 + (thumb - prev.width) // 2, 4 + (thumb - prev.height) // 2))
        d = ImageDraw.Draw(tile)
        colour = _COLOURS[p.worst]
        d.rectangle((0, 0, tile.width - 1, thumb + 7), outline=colour, width=4)
        d.text((4, thumb + 10), p.path.name[:26], fill=(0, 0, 0))
        d.text((4, thumb + 24), ", ".join(f.kind for f in p.flags)[:26] or "ok", fill=colour)
        tiles.append(tile)
    tiles = tiles or [Image.new("RGB", (thumb + 8, thumb + 44), (255, 255, 255))]
    return image_grid(tiles, cols=min(5, len(tiles)), pad=6)
