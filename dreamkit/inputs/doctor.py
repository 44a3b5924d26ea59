"""The dataset doctor: look at the photos before training on them.

Most bad DreamBooth results start with the photos. `check_photos(folder)` reads every photo the
way training will (EXIF rotation applied, transparency flattened, centre-cropped to the training
resolution) and flags what tends to go wrong, each flag with what to do:

    problem  unreadable, far too small, blurry, a near-duplicate, fewer than 3 photos
    warning  upscaled, an extreme aspect ratio (the centre crop cuts the subject), grayscale,
             a transparent background, bars or a screenshot's frame around the photo, text
             or a watermark over it, more than 20 photos
    note     a rotation stored in EXIF (dreamkit applies it; other tools may not)

`report.grid()` draws the thumbnails as training will see them (outside the crop dimmed) with
their flags; `fix_photos` writes upright, flattened copies, optionally with your own crop.
How the measures were calibrated (sharpness, hashes) is in docs/data-doctor.md.
"""

from __future__ import annotations

import itertools
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from ..core import checks
from ..core.checks import PICTURE_SUFFIXES as PICTURES
from ..core.errors import ImageError
from .buckets import bucket_sizes, cropped_share, nearest_bucket
from .doctor_views import crop_box, crop_preview, draw_grid
from .overlays import overlay_flags
from .photo_measures import (DEBLOCK_BELOW, as_trained, deblocked, finer_blur, gradient_hash,
                             gray_as_trained, hash_distance, jpeg_quality, motion_streak,
                             sharpest_part_blur, sharpness)
from .photos import find_images, open_image, unread_note, unread_photos

__all__ = ["Flag", "PhotoCheck", "DataReport", "check_photos", "crop_box", "crop_preview",
           "fix_photos", "SEVERITIES", "PHOTOS_MIN"]

SEVERITIES = ("problem", "warning", "note")
# sharpest_part_blur at training size; set on three subjects, checked on two (docs/data-doctor.md)
MAX_BLUR = 0.58
# Under MAX_BLUR + NEAR_LINE a "blurry" photo is close to the line, where most sharp photos
# called blurry have measured (dark, smooth or JPEG-saved ones: 0.59-0.62, docs/data-doctor.md),
# unless the camera-shake streak says so too
NEAR_LINE = 0.05
# motion_streak at training size: sharp calibration photos and their harmless copies measure
# up to 7.3, copies smeared by 1.5 % of the width 11.3 and more (docs/data-doctor.md)
MAX_SHAKE = 9.0
DUPLICATE_BITS = 0.15  # share of differing hash signs; distinct photos of one subject >= 0.28
MAX_ASPECT = 1.5  # the centre crop keeps 1/aspect of the long side: below 67% the subject may go
# The paper's subjects have 4-6 photos; guides say 5-20. Fewer than 3 cannot show what is
# the subject and what is the scene.
PHOTOS_MIN, PHOTOS_GOOD, PHOTOS_MAX = 3, 5, 20


@dataclass
class Flag:
    kind: str  # unreadable, too_small, upscaled, blurry, duplicate, aspect, grayscale, ...
    severity: str  # problem, warning, note
    message: str  # what is wrong, with the measured value
    fix: str  # what to do about it

    def __str__(self):
        return f"{self.severity}: {self.message}; {self.fix}"


@dataclass
class PhotoCheck:
    path: Path
    size: tuple | None = None  # upright (width, height); None when unreadable
    flags: list = field(default_factory=list)
    laplacian_var: float | None = None  # texture as much as focus: shown, not judged on
    blur: float | None = None  # sharpest_part_blur at training size
    blur_finer: float | None = None  # with up to twice the detail, measured when blur is high
    shake: float | None = None  # motion_streak at training size: how plainly smeared one way
    hash: np.ndarray | None = None

    @property
    def worst(self) -> str | None:
        for s in SEVERITIES:
            if any(f.severity == s for f in self.flags):
                return s
        return None


@dataclass
class DataReport:
    folder: Path
    resolution: int
    center_crop: bool
    photos: list
    flags: list  # about the set as a whole (how many photos)
    skipped: list  # non-image files
    aspect_buckets: bool = False  # photos train at their aspect-ratio bucket (buckets.py)

    def all_flags(self):
        """(path or None, flag) for every flag, the set's first."""
        return [(None, f) for f in self.flags] + [(p.path, f) for p in self.photos
                                                  for f in p.flags]

    def count(self, severity: str) -> int:
        return sum(f.severity == severity for _, f in self.all_flags())

    @property
    def ok(self) -> bool:
        """No problems (warnings and notes allowed)."""
        return self.count("problem") == 0

    def kinds(self, path=None) -> set:
        return {f.kind for p, f in self.all_flags() if path is None or p == Path(path)}

    def text(self) -> str:
        lines = [f"{self.folder}: {len(self.photos)} photo(s) at resolution={self.resolution}"]
        for path, f in self.all_flags():
            where = path.name if path is not None else "(all photos)"
            lines.append(f"  {f.severity:8} {where}: {f.message}; {f.fix}")
        unread = unread_photos(self.skipped)
        if unread:
            lines.append(f"  skipped  {unread_note(unread)}")
        clean = sum(not p.flags for p in self.photos)
        lines.append(f"{self.count('problem')} problem(s), {self.count('warning')} warning(s), "
                     f"{self.count('note')} note(s); {clean} photo(s) without remarks")
        return "\n".join(lines)

    def grid(self, path=None, thumb: int = 160):
        """Thumbnails as training sees them (outside the crop dimmed), framed by the worst
        flag; saved to `path` if given (never among the photos: the next run would learn
        from it)."""
        grid = draw_grid(self, thumb)
        if path is not None:
            path = checks.output_file("path", path, {"the photo folder": self.folder}, PICTURES)
            path.parent.mkdir(parents=True, exist_ok=True)
            grid.save(path)
        return grid


def _direction(angle: float) -> str:
    """A smear's direction in words (angle in degrees, 0 = across, 90 = up and down)."""
    return ("across" if angle < 22.5 or angle >= 157.5 else "up and down"
            if 67.5 <= angle < 112.5 else "diagonally")


def _check_one(path: Path, resolution: int, center_crop: bool,
               aspect_buckets: bool = False) -> PhotoCheck:
    check = PhotoCheck(path)
    add = lambda *a: check.flags.append(Flag(*a))  # noqa: E731
    try:
        img = open_image(path)  # upright RGB, as training reads it
        with Image.open(path) as raw:
            orientation = raw.getexif().get(0x0112, 1)
            has_alpha = raw.mode in ("RGBA", "LA", "PA") or "transparency" in raw.info
            alpha_min = raw.convert("RGBA").getchannel("A").getextrema()[0] if has_alpha else 255
            mode, quality = raw.mode, jpeg_quality(raw)
    except (ImageError, OSError, ValueError) as e:
        what, _, fix = str(e).split(": ", 1)[-1].partition("; ")  # the error's own fix, once
        add("unreadable", "problem", what, fix or "re-export it as JPEG or PNG, or remove it")
        return check
    check.size = img.size
    w, h = img.size
    if min(w, h) < resolution / 2:
        add("too_small", "problem", f"{w}×{h} is under half of resolution={resolution} and "
            f"will be upscaled {resolution / min(w, h):.1f}× (blurry training data)",
            "use a larger original, or train at a lower resolution")
    elif min(w, h) < resolution:
        add("upscaled", "warning", f"{w}×{h} is below resolution={resolution} and will be "
            f"upscaled {resolution / min(w, h):.1f}×", "a larger original is better")
    if min(w, h) < 16:  # a line of pixels: flagged as too small, nothing else to measure
        return check
    seen = as_trained(img, resolution)
    gray = np.asarray(seen.convert("L"))
    # a JPEG saved below quality 90 has its block edges smoothed for the blur measure alone
    # (they would look crisp); the other checks judge the photo as training sees it
    blocky = quality is not None and quality < DEBLOCK_BELOW
    measured = deblocked(img) if blocky else img
    blur_gray = gray_as_trained(measured, resolution) if blocky else gray
    check.laplacian_var, check.blur = sharpness(gray), sharpest_part_blur(blur_gray)
    check.shake, length, angle = motion_streak(gray)
    size = f"at the training size {seen.width}×{seen.height}"
    if check.blur >= MAX_BLUR:
        check.blur_finer = finer_blur(measured, resolution)
    if check.blur >= MAX_BLUR and (check.blur_finer is None or check.blur_finer >= MAX_BLUR):
        finer = "" if check.blur_finer is None else f"; {check.blur_finer:.2f} with more detail"
        deciding = min(check.blur, check.blur_finer or check.blur)  # both looks said blurry
        near = deciding < MAX_BLUR + NEAR_LINE and check.shake < MAX_SHAKE  # no smear seen
        look = "close to the line, where some sharp dark or smooth photos measure too: look " \
            "at it at 100 % first; if it is soft, " if near else ""
        add("blurry", "problem", f"looks blurry {size} (blur {check.blur:.2f} in its sharpest "
            f"part{finer}; sharp photos measure < {MAX_BLUR}): out of focus, shaken, or "
            "enlarged from a smaller photo", look + "the model learns the blur too: use a sharp "
            f"photo, at least {resolution} px on its short side as taken")
    elif check.shake >= MAX_SHAKE:  # crisp across the smear, so the sharpest part passed
        add("blurry", "problem", f"looks shaken {size}: smeared about {length:.0f} px "
            f"{_direction(angle)} (streak {check.shake:.1f}; sharp photos measure < "
            f"{MAX_SHAKE:g}), as by a camera moved during the shot", "the model learns the "
            "smear too: use a photo taken with a steady camera (a regular pattern, such as a "
            "knit, filling much of a sharp photo can measure so too: look before leaving it out)")
    overlay_flags(np.asarray(seen), gray, add)
    aspect = max(w, h) / min(w, h)
    if aspect_buckets:  # no square crop: say which bucket, and what it still cuts
        bucket = nearest_bucket((w, h), bucket_sizes(resolution))
        cut = cropped_share((w, h), bucket)
        add("bucket", "warning" if cut > 0.25 else "note", f"trains at {bucket[0]}×{bucket[1]} "
            f"(its aspect-ratio bucket), {cut:.0%} cut off", "crop it nearer 2:1 yourself"
            if cut > 0.25 else "nothing to do")
    elif center_crop and aspect > MAX_ASPECT:
        add("aspect", "warning", f"aspect ratio {aspect:.2f}: the centre crop keeps only "
            f"{100 / aspect:.0f}% of the {'width' if w > h else 'height'}, so the subject may be "
            f"cut", "check the crop in the grid; crop it yourself (fix_photos with crops=) or "
            "set center_crop=False")
    rgb = np.asarray(img.resize((64, 64)), dtype=np.int16)
    if mode in ("L", "LA", "1", "I", "I;16") or np.abs(rgb - rgb.mean(axis=2, keepdims=True)).max() < 6:
        add("grayscale", "warning", "is black and white", "the model will learn a grey "
            "subject; use colour photos unless that is the look you want")
    if alpha_min < 255:
        add("transparency", "warning", "has a transparent background; it becomes white",
            "a photo with a real background teaches the subject better than a cut-out")
    if orientation not in (1, None):
        add("exif_rotation", "note", f"stored rotated (EXIF orientation {orientation}); "
            f"dreamkit turns it upright", "fix_photos writes an upright copy other tools "
            "read the same way")
    check.hash = gradient_hash(img)
    return check


def check_photos(folder, resolution: int = 512, center_crop: bool = True,
                 progress: bool = True, aspect_buckets: bool = False) -> DataReport:
    """Check every photo under `folder` for what spoils DreamBooth; see the module doc."""
    checks.check_resolution("resolution", resolution)  # as `dreamkit check-data` checks it
    scan = find_images(folder, setting="instance_dir")
    photos = [_check_one(p, resolution, center_crop, aspect_buckets)
              for p in tqdm(scan.images, desc="checking photos", unit="photo",
                            disable=not progress)]
    hashed = [p for p in photos if p.hash is not None]
    for a, b in itertools.combinations(hashed, 2):
        d = hash_distance(a.hash, b.hash)
        if d is None or d > DUPLICATE_BITS:
            continue
        keep, drop, why = _better_copy(a, b)
        if "duplicate" not in {f.kind for f in drop.flags}:
            drop.flags.append(Flag("duplicate", "problem", f"near-duplicate of {keep.path.name} "
                                   f"({d:.0%} of its edges differ; this copy is {why})",
                                   "keep one: the same view twice teaches the background and "
                                   "pose, not the subject"))
    n = len(hashed)
    flags = []
    if n < PHOTOS_MIN:
        flags.append(Flag("too_few", "problem", f"{n} readable photo(s)",
                          f"DreamBooth needs at least {PHOTOS_MIN}; {PHOTOS_GOOD}-{PHOTOS_MAX} "
                          f"in varied poses and places work best"))
    elif n > PHOTOS_MAX:
        flags.append(Flag("too_many", "warning", f"{n} photos", f"more than {PHOTOS_MAX} "
                          f"rarely helps and needs more steps (~100 per photo); keep the "
                          f"sharpest, most varied ones"))
    return DataReport(Path(folder), resolution, center_crop, photos, flags, scan.skipped,
                      aspect_buckets)


def _better_copy(a: PhotoCheck, b: PhotoCheck) -> tuple[PhotoCheck, PhotoCheck, str]:
    """Of two near-duplicates, the one to keep, the one to leave out and why: `fix_photos`
    keeps the first, so a sharp photo is not dropped for its blurred or shrunk copy. (File
    size says nothing here: a JPEG saved at quality 30 and opened and saved again at 95 is
    larger than the original it came from.)"""
    def problems(p):
        return sum(f.severity == "problem" and f.kind != "duplicate" for f in p.flags)

    def pixels(p):
        return -p.size[0] * p.size[1]
    for why, key in (("the one with problems", problems), ("smaller", pixels)):
        if key(a) != key(b):
            return (a, b, why) if key(a) < key(b) else (b, a, why)
    return a, b, "the later one"


def fix_photos(report: DataReport, out, crops: dict | None = None,
               drop_duplicates: bool = True) -> list[Path]:
    """Write upright, flattened RGB PNGs of the readable photos into `out` (with their .txt
    captions). `crops` maps a file name to a box (left, top, right, bottom) in upright pixels,
    or to an offset -1..1 for the square crop (see crop_box). Returns the written paths."""
    out = checks.output_folder("out", out, {"the photo folder": report.folder})  # never among them
    out.mkdir(parents=True, exist_ok=True)
    crops = crops or {}
    written = []
    for p in report.photos:
        if p.size is None or (drop_duplicates and "duplicate" in {f.kind for f in p.flags}):
            continue
        img = open_image(p.path)
        c = crops.get(p.path.name)
        if c is not None:
            img = img.crop(crop_box(img.size, c) if isinstance(c, (int, float)) else tuple(c))
        dest = out / (p.path.stem + ".png")
        img.save(dest)
        side = p.path.with_suffix(".txt")
        if side.is_file():
            shutil.copyfile(side, dest.with_suffix(".txt"))
        written.append(dest)
    return written
