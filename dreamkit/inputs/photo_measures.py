"""What the dataset doctor measures in a picture: sharpness, blur (at the size training sees the
photo, again with more detail, a low-quality JPEG with its block edges smoothed), a camera
shake, and a hash that finds the same photo again after resizing or re-compression
(thresholds and their calibration: docs/data-doctor.md)."""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["sharpness", "blur_effect", "sharpest_part_blur", "as_trained", "gray_as_trained",
           "jpeg_quality", "deblocked", "finer_blur", "DEBLOCK_BELOW", "motion_streak",
           "gradient_hash", "hash_distance", "FLAT_LEVELS"]

FLAT_LEVELS = 3  # a hash cell whose neighbours differ by less is flat (plain background): ignored


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian: high for crisp edges, near 0 for a blurred picture."""
    a = gray.astype(np.float32)
    lap = -4 * a[1:-1, 1:-1] + a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:]
    return float(lap.var())


def blur_effect(gray: np.ndarray, h: int = 11) -> float:
    """Crete et al. (2007) no-reference blur: blur the picture again and see how much of its
    local variation survives. 0 = sharp, 1 = blurry; independent of how much texture there is."""
    a = gray.astype(np.float32)
    worst = 0.0
    for axis in (0, 1):
        kernel = np.ones(h, dtype=np.float32) / h
        again = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), axis, a)
        d = np.abs(np.diff(a, axis=axis))
        v = np.maximum(0, d - np.abs(np.diff(again, axis=axis)))
        total = d.sum()
        worst = max(worst, 1.0 if total == 0 else float((total - v.sum()) / total))
    return worst


EDGE_LEVELS = 4.0  # a change of fewer grey levels per pixel is noise or quantisation, not an edge
MIN_EDGE_SHARE = 0.02  # a tile with edges at under 2 % of its pixels is flat
_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))  # across, down, both diagonals: motion any way


def _along(a: np.ndarray, dy: int, dx: int, op) -> np.ndarray:
    """op over the three pixels centred on each pixel along (dy, dx) (edges repeated)."""
    b = np.pad(a, 1, mode="edge")
    h, w = a.shape
    return op([b[1 + i * dy:1 + i * dy + h, 1 + i * dx:1 + i * dx + w] for i in (-1, 0, 1)])


def sharpest_part_blur(gray: np.ndarray, tile: int = 64, floor: float = EDGE_LEVELS) -> float:
    """How blurred the sharpest part of the picture is: 0 = crisp .. 1 = smeared.
    Per tile and per direction (across, down, diagonals), Crete's measure with a 3-pixel
    average over the pixel-to-pixel changes of at least `floor` levels (edges; sensor noise,
    JPEG blocks and the 1-level steps of a smooth gradient look crisp and are left out): the
    share of that change a second blur leaves (a blurred picture has little left to lose),
    each change weighted by its size.
    A tile counts its blurriest direction (motion blur smears one way), the picture its
    sharpest tile with edges in it (a sharp subject on a blurred background is sharp). A ratio
    of the picture's own changes, so dark and low-contrast photos measure like bright ones."""
    a = gray.astype(np.float32)
    h, w = (a.shape[0] // tile) * tile, (a.shape[1] // tile) * tile
    if h == 0 or w == 0:
        return blur_effect(gray)
    per_direction, edges = [], None

    def tiles(x):
        return x[:h, :w].reshape(h // tile, tile, w // tile, tile).sum(axis=(1, 3)).ravel()

    for dy, dx in _DIRECTIONS:
        change = np.abs(_along(a, dy, dx, lambda v: v[2] - v[1]))
        again = np.abs(_along(_along(a, dy, dx, lambda v: (v[0] + v[1] + v[2]) / 3), dy, dx,
                              lambda v: v[2] - v[1]))
        edge = change >= floor
        # each change weighs as much as it is large: the outlines, not the steep shading
        # between them, say whether a tile is in focus (smooth sharp objects: teapot 03 at 512
        # measured 0.59 weighing every edge alike, 0.52 so)
        total = tiles(change * change * edge)
        lost = tiles(np.maximum(0, change - again) * change * edge)
        per_direction.append(np.where(total > 0, 1 - lost / np.maximum(total, 1e-9), 1.0))
        share = tiles(edge) / tile ** 2
        edges = share if edges is None else np.maximum(edges, share)
    worst = np.max(per_direction, axis=0)
    informative = edges >= MIN_EDGE_SHARE  # a flat tile (sky, a wall) says nothing of focus
    return float(worst[informative].min() if informative.sum() >= 3 else worst.min())


# A photo called blurry at training size is looked at again with up to FINER times the detail,
# when it has at least FINER_MIN times as much (finer_blur)
FINER, FINER_MIN = 2.0, 1.5


def as_trained(img: Image.Image, resolution: int) -> Image.Image:
    """The photo at the size training sees it (short side = resolution; a smaller photo at its
    own size, so that upscaling does not blur it further: it is flagged for its size).
    A blur that vanishes at this size is one training never sees."""
    s = min(resolution, min(img.size)) / min(img.size)
    return img.resize((max(1, round(img.width * s)), max(1, round(img.height * s))),
                      Image.Resampling.BICUBIC)


def gray_as_trained(img: Image.Image, resolution: int) -> np.ndarray:
    """as_trained in grey levels 0-255 (uint8), of an RGB photo or of `deblocked`'s grey."""
    seen = as_trained(img, resolution)
    if seen.mode == "F":
        return np.clip(np.asarray(seen) + 0.5, 0, 255).astype(np.uint8)
    return np.asarray(seen.convert("L"))


JPEG_BLOCK = 8  # a JPEG codes its pixels in 8×8 blocks, each quantised on its own
BLOCK_STEP = 12.0  # a step between blocks of up to this many grey levels may be the quantiser's
# Saved at this quality or above (cameras and phones: 90-95; the DreamBooth photos: 90), a
# blurred photo's block edges stay too faint to pass for focus: measured as it is
DEBLOCK_BELOW = 90
_STANDARD_LUMA_MEAN = 57.625  # the mean step of the JPEG standard's luminance table (quality 50)


def jpeg_quality(img: Image.Image) -> float | None:
    """The quality (1-100, as image editors and PIL's `quality=` count it) a JPEG was saved at,
    read from its luminance quantisation table; None for other formats."""
    # MPO: the JPEG a phone writes with a second picture (a depth map) after the first
    tables = getattr(img, "quantization", None) if img.format in ("JPEG", "MPO") else None
    if not tables:
        return None
    scale = float(np.mean(tables[min(tables)])) / _STANDARD_LUMA_MEAN
    return 100 - 50 * scale if scale <= 1 else 50 / scale  # the IJG library's scaling


def _grid(a: np.ndarray) -> int:
    """Where the block edges fall along axis 1: the offset (0-7) whose pixel-to-pixel steps are
    largest on average (an EXIF rotation or a crop moves the grid, so it is looked for)."""
    d = np.abs(np.diff(a[::4], axis=1))  # every 4th row is plenty to find it
    usable = d.shape[1] // JPEG_BLOCK * JPEG_BLOCK
    means = d[:, :usable].reshape(d.shape[0], -1, JPEG_BLOCK).mean(axis=(0, 1))
    return (int(np.argmax(means)) + 1) % JPEG_BLOCK  # a step after pixel k-1 is an edge at k


def deblocked(img: Image.Image) -> Image.Image:
    """A JPEG's grey levels with its block edges smoothed where a step stands alone (flat on
    both sides: the quantiser's, not the scene's), as a float image for gray_as_trained.
    At quality 60-75 (a photo saved again by a messaging app, or by PIL's default) those steps
    are the crispest changes a blurred photo has left, and the blur measure took them for focus
    (docs/data-doctor.md). An outline or a slope that crosses a block edge goes on at both sides
    of it, or steps by more than BLOCK_STEP: it is left as it is."""
    a = np.asarray(img.convert("L"), np.float32).copy()
    for x in (a, a.T):  # across, then down (the transpose is a view: written in place)
        if x.shape[1] < 3 * JPEG_BLOCK:
            continue
        first = _grid(x)
        first += JPEG_BLOCK if first < 2 else 0  # the first block edge 2 pixels in or more
        n = (x.shape[1] - 2 - first) // JPEG_BLOCK + 1  # edges with a pixel after them
        p0, p1, q0, q1 = (x[:, first + k:first + k + JPEG_BLOCK * (n - 1) + 1:JPEG_BLOCK]
                          for k in (-2, -1, 0, 1))  # views: every block edge at once
        step = q0 - p1
        alone = (np.abs(step) <= BLOCK_STEP) & (
            2 * np.maximum(np.abs(p1 - p0), np.abs(q1 - q0)) <= np.abs(step))
        ramp = (q1 - p0) / 3  # a straight ramp p0 -> q1 in place of the step
        p1[...], q0[...] = np.where(alone, p0 + ramp, p1), np.where(alone, p0 + 2 * ramp, q0)
    return Image.fromarray(a, "F")


def finer_blur(img: Image.Image, resolution: int) -> float | None:
    """The sharpest part measured again with up to twice the detail training sees; None for a
    photo without 1.5 times as much. A photo blurred as a whole is as blurred or more at every
    larger size (shrinking is what hides a blur), so this second look clears only a sharp part
    too small for a 64 px tile at training size: a subject in the middle of a blurred
    background, whose outline shares each tile with the blur (docs/data-doctor.md).
    `img`: the RGB photo, or a JPEG's `deblocked` grey (closer to the original size, its block
    edges would otherwise measure crisp)."""
    finer = min(min(img.size), round(FINER * resolution))
    if finer < FINER_MIN * resolution:
        return None
    return sharpest_part_blur(gray_as_trained(img, finer))


# A dip whose double (twice as far from the centre) is a peak standing this many standard
# deviations above the cepstrum around it is a regular pattern's, not a smear's (calibration's
# smeared copies: up to 3.2; docs/data-doctor.md).
PATTERN_ECHO = 4.5
PATTERN_CANDIDATES = 50  # dips looked at, deepest first


def motion_streak(gray: np.ndarray, tile: int = 256, shortest: int = 6,
                  longest: int = 40) -> tuple[float, float, float]:
    """How plainly the picture was smeared along one straight line (a camera shake), how long
    the smear is in pixels, and its direction (degrees, 0 = across).
    A smear of L pixels multiplies the picture's spectrum by a wave with zeros every 1/L; in
    the cepstrum (the spectrum of the log spectrum) those zeros make one deep dip, L pixels
    from the centre in the smear's direction, whatever the photo shows. The strength is that
    dip's depth in standard deviations of the cepstrum around it (sharp photos: 2-8, smeared
    ones 10-30; docs/data-doctor.md). The spectrum is averaged over half-overlapping tiles
    (Welch), so one busy corner does not decide. Smears under `shortest` px are left to
    sharpest_part_blur: there the photo's own outlines make dips too. A dip that a regular
    pattern makes (at half its period, with a peak at the period itself, where a smear dips
    again) is passed over for the deepest one that is not. (0, 0, 0) for a picture smaller
    than a tile."""
    if 2 * longest + 4 > tile // 2:  # the pattern check looks at twice the longest smear
        raise ValueError(f"motion_streak: longest={longest} needs tile >= {4 * longest + 8}")
    a = gray.astype(np.float64)
    h, w = a.shape
    if min(h, w) < tile:
        return 0.0, 0.0, 0.0
    window = np.outer(np.hanning(tile), np.hanning(tile))
    power, n = 0.0, 0
    for y in range(0, h - tile + 1, tile // 2):
        for x in range(0, w - tile + 1, tile // 2):
            t = a[y:y + tile, x:x + tile]
            power = power + np.abs(np.fft.fft2((t - t.mean()) * window)) ** 2
            n += 1
    power = power / n
    cep = np.fft.fftshift(np.real(np.fft.ifft2(np.log(power + 1e-6 * power.mean() + 1e-12))))
    c = tile // 2
    dy, dx = np.mgrid[-longest:longest + 1, -longest:longest + 1]
    r = np.hypot(dy, dx)
    ring = (r >= shortest) & (r <= longest)
    near = cep[c - longest:c + longest + 1, c - longest:c + longest + 1]
    middle, spread = np.median(near[ring]), near[ring].std() + 1e-12
    depth = (middle - near) / spread
    depth[~ring] = -np.inf
    for i in np.argsort(depth, axis=None)[::-1][:PATTERN_CANDIDATES]:
        y, x = int(dy.flat[i]), int(dx.flat[i])
        # A smear's zeros fall at every multiple of 1/L, so its cepstrum dips at 2L as well; a
        # regular pattern (a knit, stripes) dips at half its period and peaks at its period.
        if _echo(cep, c + 2 * y, c + 2 * x) < PATTERN_ECHO:
            angle = float(np.degrees(np.arctan2(y, x))) % 180
            return float(depth.flat[i]), float(r.flat[i]), angle
    return 0.0, 0.0, 0.0


def _echo(cep: np.ndarray, y: int, x: int) -> float:
    """How far the cepstrum at (y, x) (the highest of the 3×3 there) stands above the 7×7
    around it, in that ring's standard deviations: a peak marks a regular pattern's period;
    where a smear's dip doubles, the cepstrum dips again."""
    block = cep[y - 3:y + 4, x - 3:x + 4]
    ring = np.ones((7, 7), bool)
    ring[2:5, 2:5] = False
    return float((block[2:5, 2:5].max() - np.median(block[ring])) / (block[ring].std() + 1e-12))


def gradient_hash(img: Image.Image, n: int = 16) -> np.ndarray:
    """A difference hash (n×n): how each pixel of a 17×16 grey thumbnail compares with its left
    neighbour. Survives resizing, re-compression and brightness changes."""
    g = np.asarray(img.convert("L").resize((n + 1, n), Image.Resampling.LANCZOS), dtype=np.int16)
    return np.diff(g, axis=1)


def hash_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """Share of the cells where the two hashes point different ways, counting only cells that
    are not flat in both (two photos on one plain background would otherwise agree on all of
    it); None when fewer than 10% of cells have any edge (nothing to compare)."""
    informative = (np.abs(a) >= FLAT_LEVELS) | (np.abs(b) >= FLAT_LEVELS)
    if informative.mean() < 0.10:
        return None
    return float(((a > 0) != (b > 0))[informative].mean())
