"""What is not the photo: bars and screenshot frames around it, text written over it.

Both are learned as part of the subject ("sks dog" comes with black bars or a watermark), and
neither is a matter of taste, so the doctor warns. Both are heuristics on the picture at the
size training sees it (calibration and misses: docs/data-doctor.md):

- `border_bands`: how deep a band of one flat, neutral colour (black, white, grey: bars and app
  chrome, never sky) runs in from each side and ends at a straight edge across the picture, and
  whether the band holds ink (a status bar's clock, a caption, a user name).
- `text_lines`: rows of letter-sized marks, each much brighter or darker than its surroundings,
  of one height, on one line, close together: a watermark, a meme caption, a date stamp.
- `slanted_text_lines`: the same lines written at a slant (a stock photo's tiled watermark),
  found on the picture turned so that they run across.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["border_bands", "text_lines", "slanted_text_lines", "overlay_flags", "BAND_MATCH",
           "BAND_NEUTRAL", "FRAME_MIN", "TEXT_SLANTS"]

BAND_MATCH = 12  # levels: a pixel within this of the band's colour (in every channel) is band
BAND_NEUTRAL = 16  # levels between a band colour's channels: black, white or grey, not sky
FRAME_MIN = 0.02  # a band of flat colour over 2 % of the picture on a side is a frame, not a photo


def _band_depth(rgb: np.ndarray) -> tuple[int, bool]:
    """Rows (from row 0 down) of one flat neutral colour, and whether some hold ink. 0 when the
    band does not end in a straight edge (the photo's own plain background, a wall, a table)."""
    ref = np.median(rgb[0], axis=0)
    if np.ptp(ref) > BAND_NEUTRAL:
        return 0, False
    # the share of each row in the band's colour, row by row down until two rows past the
    # first that is not band (a few rows for most photos: the whole picture only for a band)
    n, match, below, done, step = len(rgb), np.empty(0), np.empty(0, int), 0, 32
    while done < n:
        part = rgb[done:done + step].astype(np.int16)
        match = np.concatenate([match, (np.abs(part - ref).max(axis=2) <= BAND_MATCH).mean(axis=1)])
        done, step = done + len(part), 2 * step
        below = np.flatnonzero(match < 0.6)
        if len(below) and done >= below[0] + 2:
            break
    depth = int(below[0]) if len(below) else n
    if depth == 0 or depth >= n - 2:
        return 0, False
    if match[depth:depth + 2].max() > 0.3 and not _starts_on_one_row(rgb, ref, depth):
        return 0, False  # no straight edge: the band fades into the scene
    band = match[:depth]
    inked = ((band < 0.97) & (band >= 0.6)).mean() >= 0.15
    return depth, bool(inked)


def _starts_on_one_row(rgb: np.ndarray, ref: np.ndarray, depth: int) -> bool:
    """Whether the photo starts on row `depth`: nearly every pixel there that is not the band's
    colour had the band's colour in the three rows above it. So a black bar above a photo whose
    own top is dark (a night sky, a dark floor: many of its first rows' pixels match the bar) is
    still a bar, while a wall or backdrop that fades into the subject, leaving the band column
    by column over many rows, is not."""
    if depth < 3:
        return False
    near = np.abs(rgb[depth - 3:depth + 1].astype(np.int16) - ref).max(axis=2) <= BAND_MATCH
    photo = ~near[3]
    return (photo & near[:3].all(axis=0)).sum() >= 0.9 * photo.sum()


def border_bands(rgb: np.ndarray) -> dict:
    """{side: (fraction of the picture, holds ink)} for top, bottom, left and right."""
    views = {"top": rgb, "bottom": rgb[::-1], "left": rgb.transpose(1, 0, 2),
             "right": rgb.transpose(1, 0, 2)[::-1]}
    out = {}
    for side, view in views.items():
        depth, inked = _band_depth(view)
        out[side] = (depth / view.shape[0], inked)
    return out


def _box_mean(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)² window (edges repeated) of a picture of whole levels (0-255), by
    running sums in integers: exact, and 3x faster than a float summed-area table (whose
    sums pass float32's 2^24 on a 700 px picture)."""
    k = 2 * r + 1
    s = np.pad(a.astype(np.int32), ((r + 1, r), (r + 1, r)), mode="edge")
    np.cumsum(s, 0, out=s)
    s = s[k:] - s[:-k]  # each pixel's column of k rows
    np.cumsum(s, 1, out=s)
    s = (s[:, k:] - s[:, :-k]).astype(np.float32)
    s *= np.float32(1 / (k * k))
    return s


def _components(mask: np.ndarray) -> list:
    """Bounding boxes and areas of the 8-connected parts of a mask: [top, left, bottom, right,
    area], by runs per row (union-find over the runs; each run joined to the runs of the row
    above that touch it, diagonals included, found by walking both rows left to right)."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), bool)
    padded[:, 1:-1] = mask
    # where a row changes, row by row: each run's start, then one past its last pixel (found
    # in the flat array: 4x faster than np.nonzero's row and column pairs)
    at = np.flatnonzero(padded[:, 1:] != padded[:, :-1])
    ys, xs = at // (w + 1), at % (w + 1)
    ys, starts, ends = ys[::2], xs[::2], xs[1::2]
    first = np.searchsorted(ys, np.arange(mask.shape[0] + 1)).tolist()  # each row's runs
    x0, x1 = starts.tolist(), ends.tolist()
    parent = list(range(len(x0)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for y in range(1, mask.shape[0]):
        j, above_end = first[y - 1], first[y]
        for i in range(first[y], first[y + 1]):
            while j < above_end and x1[j] < x0[i]:  # ends left of this run: touches no later one
                j += 1
            k = j
            while k < above_end and x0[k] <= x1[i]:
                parent[find(k)] = find(i)
                k += 1
    if not parent:
        return []
    roots = np.array([find(i) for i in range(len(parent))])
    _, order, part = np.unique(roots, return_index=True, return_inverse=True)
    n = len(order)
    top, left = np.full(n, mask.shape[0]), np.full(n, mask.shape[1])
    bottom, right, area = np.full(n, -1), np.full(n, -1), np.zeros(n, np.int64)
    np.minimum.at(top, part, ys)
    np.minimum.at(left, part, starts)
    np.maximum.at(bottom, part, ys)
    np.maximum.at(right, part, ends - 1)
    np.add.at(area, part, ends - starts)
    boxes = np.stack([top, left, bottom, right, area], axis=1)[np.argsort(order)]
    return boxes.tolist()


def text_lines(gray: np.ndarray, min_letters: int = 6) -> list:
    """Lines of text written over the picture: [(top, bottom, letters)] in pixels.
    A mark is letter-sized (1.5-12 % of the picture's height, no wider than 1.6× its height,
    strokes filling 12-70 % of its box) and 40 levels brighter or darker than what is around
    it (1/35 of the short side); a line is `min_letters` such marks of one height side by
    side, gaps under 1.5 heights (hair, foliage and logos on the subject made shorter lines;
    a taller or shorter mark on the line is not counted but does not break it)."""
    return _lines(gray.astype(np.float32), gray.shape[0], min_letters)


# Slants tried for writing across the picture (a stock photo's tiled watermark): every 15°,
# so a line is at most 7.5° off one of them, which following the line letter by letter allows
TEXT_SLANTS = (15, 30, 45, 60)
SLANT_VIEW = 512  # px, short side: slanted writing is looked for on at most this size


def slanted_text_lines(gray: np.ndarray, min_letters: int = 6) -> list:
    """Lines of letters written at a slant: [(degrees, letters)], degrees > 0 rising to the
    right. The picture is turned by each of ±TEXT_SLANTS so that such a line runs across,
    and text_lines' marks are looked for there, each next letter on the line of the one
    before it; marks near the corners turned in are left out."""
    from PIL import Image

    view = Image.fromarray(gray)
    if min(view.size) > SLANT_VIEW:
        k = SLANT_VIEW / min(view.size)
        view = view.resize((round(view.width * k), round(view.height * k)), Image.BILINEAR)
    fill, found = int(np.median(gray)), []
    for degrees in (s for t in TEXT_SLANTS for s in (t, -t)):
        turned = view.rotate(-degrees, resample=Image.BILINEAR, expand=True, fillcolor=fill)
        found += [(degrees, n) for _, _, n in _lines(np.asarray(turned, np.float32), view.height,
                                                      min_letters, _turned_in(view.size, degrees))]
    return found


@functools.lru_cache(maxsize=32)
def _turned_in(size: tuple, degrees: int) -> np.ndarray:
    """Which pixels of a picture of `size` turned by `degrees` are the picture's own (the
    rest is what turning brought in); the same for every photo of one camera's size."""
    from PIL import Image
    whole = Image.new("L", size, 255).rotate(-degrees, expand=True, fillcolor=0)
    inside = np.asarray(whole) > 0
    inside.flags.writeable = False  # one array for every photo of that size: read only
    return inside


def _lines(a: np.ndarray, h: int, min_letters: int, inside=None) -> list:
    """text_lines on `a` (letter sizes relative to `h`); with `inside` (a turned picture's
    own pixels), marks near what was turned in are left out and a line follows its letters."""
    r = max(7, round(min(a.shape) / 70))  # wider than a letter's stroke
    local = _box_mean(a, r)
    found = []
    for mask in (a - local > 40, local - a > 40):
        marks = []
        for y0, x0, y1, x1, area in _components(mask):
            mh, mw = y1 - y0 + 1, x1 - x0 + 1
            if 0.015 * h <= mh <= 0.12 * h and mh >= 6 and mw <= 1.6 * mh \
                    and 0.12 <= area / (mh * mw) <= 0.7 and \
                    (inside is None or inside[max(0, y0 - r):y1 + r + 1,
                                              max(0, x0 - r):x1 + r + 1].all()):
                marks.append((x0, x1, y0, y1, mh))
        marks.sort()
        used = set()
        for i, (x0, x1, y0, y1, mh) in enumerate(marks):
            if i in used:
                continue
            line, right = [i], x1
            for j in range(i + 1, len(marks)):
                u0, u1, v0, v1, nh = marks[j]
                if u0 - right > 1.5 * mh:
                    break
                # across: every letter on the first one's line; turned, on the last one's
                # (a slant a few degrees off the turn)
                _, _, c0, c1, _ = marks[line[-1]] if inside is not None else marks[i]
                if j not in used and abs((v0 + v1) - (c0 + c1)) / 2 <= 0.2 * mh \
                        and 0.7 <= nh / mh <= 1.4:
                    line.append(j)
                    right = max(right, u1)
                elif abs((v0 + v1) - (c0 + c1)) / 2 <= 0.5 * mh:
                    # on the line but of another height (the h and k of "stock" beside its
                    # s, o, c): not counted, but the gap is measured past it
                    right = max(right, u1)
            if len(line) >= min_letters:
                used.update(line)
                found.append((min(marks[k][2] for k in line), max(marks[k][3] for k in line),
                              len(line)))
    return found


def overlay_flags(rgb: np.ndarray, gray: np.ndarray, add) -> None:
    """The doctor's warnings (add(kind, severity, message, fix)) for bars or app chrome
    around the photo and text written over it."""
    found = {side: band for side, band in border_bands(rgb).items() if band[0] >= FRAME_MIN}
    bands = {side: depth for side, (depth, _) in found.items()}
    inked = any(ink for _, ink in found.values())
    if len(bands) >= 2:
        where = ", ".join(f"{side} {depth:.0%}" for side, depth in bands.items())
        what = ("looks like a screenshot: flat bands with writing around the photo" if inked
                else "has flat bars around the photo")
        add("frame", "warning", f"{what} ({where})", "the model learns them as part of the "
            "subject: crop to the photo itself (fix_photos with crops=)")
    lines = text_lines(gray)
    if lines:
        top = min(t for t, _, _ in lines) / gray.shape[0]
        add("text", "warning", f"has writing over it ({len(lines)} line(s) of letters, the "
            f"first {top:.0%} from the top)", "the model learns a watermark or caption as part "
            "of the picture: use the original photo, or crop the writing away")
        return
    slanted = slanted_text_lines(gray)
    if slanted:
        degrees = max(set(d for d, _ in slanted), key=[d for d, _ in slanted].count)
        add("text", "warning", f"has writing over it ({len(slanted)} line(s) of letters at a "
            f"slant, about {abs(degrees)}°: a watermark?)", "the model learns a watermark as "
            "part of the picture, and one over the whole photo cannot be cropped away: use the "
            "original photo (not a stock site's preview), or another one")
