"""The dataset doctor on the DreamBooth dataset's real photos and on degraded copies of them.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/doctor_recall.py   # -> doctor_recall.json
    ... benchmarks/doctor_recall.py --quality 75   # copies saved at 75 -> doctor_recall_q75.json
    ... benchmarks/doctor_recall.py --values "blur r=3" [--quality 75]   # one row, per photo
    ... benchmarks/doctor_recall.py --margins   # per size band -> doctor_margins.json

For each of the five subjects in ../shared/data/dreambooth: the folder as it is (false alarms),
then every photo replaced by a degraded copy, and whether the doctor gives the copy the
expected flag (recall), or, for the harmless changes (dark, low contrast, a blurred
background, upscaled), no flag it should not. Copies are made at the photo's own size
(687-1920 px) or after upscaling it to 2048 or 4000 px (phone-size photos); `resolution` is the
training size the doctor judges at. The thresholds were set on three subjects (CALIBRATION)
and are reported apart on the other two (HELD_OUT).
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from dreamkit.inputs.doctor import _check_one, check_photos
from dreamkit.inputs.photos import open_image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dreambooth"
CALIBRATION = ["backpack", "cat2", "dog"]
HELD_OUT = ["duck_toy", "teapot"]
SUBJECTS = CALIBRATION + HELD_OUT


def _jpeg(img, quality):
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return Image.open(buf).convert("RGB")


def _on_white(img):
    """The photo as a cut-out: the middle 60% kept, the rest transparent."""
    rgba = img.convert("RGBA")
    w, h = img.size
    mask = Image.new("L", img.size, 0)
    mask.paste(255, (w // 5, h // 5, w - w // 5, h - h // 5))
    rgba.putalpha(mask)
    return rgba


def _upscaled(img, side):
    s = side / min(img.size)
    return img.resize((round(img.width * s), round(img.height * s)), Image.Resampling.BICUBIC)


def _motion(img, share=0.015, diagonal=False):
    """A camera shake: the average of the photo moved along a line 1.5 % of its width long."""
    n = max(3, round(img.width * share)) | 1
    a = np.asarray(img, np.float32)
    p = n // 2
    pad = np.pad(a, ((p, p), (p, p), (0, 0)), mode="edge")
    h, w = a.shape[:2]
    out = np.zeros_like(a)
    for i in range(n):
        dy = i - p if diagonal else 0
        out += pad[p + dy:p + dy + h, i:i + w]
    return Image.fromarray(np.clip(out / n, 0, 255).astype(np.uint8))


def _line_smear(img, share, degrees):
    """The average of the photo moved along a straight line share × its width long, at an
    angle (0 = across, 90 = down)."""
    n = max(3, round(img.width * share)) | 1  # odd: whole-pixel steps either side of the middle
    a = np.asarray(img, np.float32)
    pad = np.pad(a, ((n, n), (n, n), (0, 0)), mode="edge")
    h, w = a.shape[:2]
    out = np.zeros_like(a)
    for s in range(-(n // 2), n // 2 + 1):
        # floor(x + 0.5): Python's round() sends halves to even numbers, bunching the steps
        dy, dx = (int(np.floor(s * f(np.radians(degrees)) + 0.5)) for f in (np.sin, np.cos))
        out += pad[n + dy:n + dy + h, n + dx:n + dx + w]
    return Image.fromarray(np.clip(out / n, 0, 255).astype(np.uint8))


def _noisy(img, sd):
    noise = np.random.default_rng(0).normal(0, sd, (img.height, img.width, 1))
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8))


def _scaled(img, gain, offset=0.0):
    return Image.fromarray(np.clip(np.asarray(img, np.float32) * gain + offset, 0, 255)
                           .astype(np.uint8))


def _background_blurred(img):
    """Shallow depth of field, harshly: all but a central ellipse (44 % of each side) blurred
    by 1 % of the width; a subject larger than the ellipse loses its outline too."""
    w, h = img.size
    yy, xx = np.mgrid[:h, :w]
    keep = (((xx - w / 2) / (w * 0.22)) ** 2 + ((yy - h / 2) / (h * 0.22)) ** 2) <= 1
    blurred = np.asarray(img.filter(ImageFilter.GaussianBlur(w * 0.01)))
    return Image.fromarray(np.where(keep[..., None], np.asarray(img), blurred).astype(np.uint8))


def _font(px):
    return ImageFont.load_default(size=max(8, int(px)))


def _watermark(img, alpha=140):
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    for y in (0.2, 0.45, 0.7):
        d.text((img.width * 0.08, img.height * y), "© STOCKPHOTO  preview",
               font=_font(img.height * 0.09), fill=(255, 255, 255, alpha))
    return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")


def _caption(img):
    img = img.copy()
    ImageDraw.Draw(img).text((img.width * 0.05, img.height * 0.82), "WHEN THE PHOTO IS PERFECT",
                             font=_font(img.height * 0.08), fill=(255, 255, 255),
                             stroke_width=max(1, int(img.height * 0.006)), stroke_fill=(0, 0, 0))
    return img


def _screenshot(img, dark=False):
    """The photo as a phone shows it in a social app: status bar, user name, caption, nav bar."""
    bg, ink = ((0, 0, 0), (255, 255, 255)) if dark else ((255, 255, 255), (20, 20, 20))
    page = Image.new("RGB", (1080, 2340), bg)
    d = ImageDraw.Draw(page)
    d.text((40, 25), "9:41", font=_font(42), fill=ink)
    d.text((880, 25), "5G 87%", font=_font(38), fill=ink)
    d.ellipse((30, 140, 120, 230), fill=(200, 120, 60))
    d.text((140, 160), "some.user  · Follow", font=_font(40), fill=ink)
    photo = img.resize((1080, round(1080 * img.height / img.width)))
    page.paste(photo, (0, 260))
    y = 290 + photo.height
    for line in ("1,234 likes", "some.user my favourite thing in the whole world",
                 "View all 56 comments"):
        d.text((40, y), line, font=_font(38), fill=ink)
        y += 60
    d.rectangle((0, 2200, 1080, 2340), fill=(30, 30, 30) if dark else (240, 240, 240))
    return page


def _letterboxed(img):
    """Black bars above and below (a 16:9 frame padded to a square)."""
    w, h = img.size
    out = Image.new("RGB", (w, h), (0, 0, 0))
    band = round(h * 0.16)
    out.paste(img.resize((w, h - 2 * band)), (0, band))
    return out


def _rotated_exif(img):
    """Stored sideways with EXIF orientation 6, as phones do."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return img.transpose(Image.Transpose.ROTATE_90), {"exif": exif}


def _saved_at(quality):
    """Saved as a JPEG at this quality (75: PIL's default; 60-80: a messaging app's copy)."""
    return lambda img: (img, {"quality": quality})


def _graded_background(img):
    """Shallow depth of field as a lens makes it: sharp in the middle 30 %, the blur growing
    in three steps (to 1.2 % of the width) towards the edges."""
    w, h = img.size
    yy, xx = np.mgrid[:h, :w]
    d = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
    out = np.asarray(img, np.float32)
    for k, share in enumerate((0.25, 0.5, 1.0)):
        blurred = np.asarray(img.filter(ImageFilter.GaussianBlur(w * 0.012 * share)), np.float32)
        weight = np.clip((d - 0.3 - 0.15 * k) / 0.15, 0, 1)[..., None]
        out = out * (1 - weight) + blurred * weight
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def _small_sharp_centre(img):
    """All but a central ellipse of 30 % of each side blurred by 1.5 % of the width."""
    w, h = img.size
    yy, xx = np.mgrid[:h, :w]
    keep = (((xx - w / 2) / (w * 0.15)) ** 2 + ((yy - h / 2) / (h * 0.15)) ** 2) <= 1
    blurred = np.asarray(img.filter(ImageFilter.GaussianBlur(w * 0.015)))
    return Image.fromarray(np.where(keep[..., None], np.asarray(img), blurred).astype(np.uint8))


def _blur(r):
    return lambda im: im.filter(ImageFilter.GaussianBlur(r))


# name -> (make the degraded copy from the upright original, the flag expected; "-kind" = a
# harmless change that must not get that flag)
DEGRADATIONS = {
    "as it is": (lambda im: im, "-blurry"),
    "upscaled to 2048 px": (lambda im: _upscaled(im, 2048), "-blurry"),
    "upscaled to 4000 px": (lambda im: _upscaled(im, 4000), "-blurry"),
    "dark (22 % brightness)": (lambda im: _scaled(im, 0.22), "-blurry"),
    "low contrast (30 %)": (lambda im: _scaled(im, 0.3, 90), "-blurry"),
    "background blurred (harsh)": (_background_blurred, "-blurry"),
    "background blurred, at 2048 px": (lambda im: _background_blurred(_upscaled(im, 2048)),
                                       "-blurry"),
    "blur r=2": (_blur(2), "blurry"),
    "blur r=3": (_blur(3), "blurry"),
    "blur r=4": (_blur(4), "blurry"),
    "at 2048 px, blur r=3": (lambda im: _blur(3)(_upscaled(im, 2048)), "blurry"),
    "at 2048 px, blur r=4": (lambda im: _blur(4)(_upscaled(im, 2048)), "blurry"),
    "at 4000 px, blur r=3": (lambda im: _blur(3)(_upscaled(im, 4000)), "blurry"),
    "at 4000 px, blur r=8": (lambda im: _blur(8)(_upscaled(im, 4000)), "blurry"),
    "motion blur 1.5 % across": (_motion, "blurry"),
    "at 2048 px, motion blur 1.5 % across": (lambda im: _motion(_upscaled(im, 2048)), "blurry"),
    "at 2048 px, motion blur 1.5 % diagonal": (
        lambda im: _motion(_upscaled(im, 2048), diagonal=True), "blurry"),
    "at 4000 px, motion blur 1.5 % across": (lambda im: _motion(_upscaled(im, 4000)), "blurry"),
    # added after the camera-shake threshold was set (2026-12-03), to check it
    "JPEG quality 60": (lambda im: _jpeg(im, 60), "-blurry"),
    "sensor noise (σ 8 levels)": (lambda im: _noisy(im, 8), "-blurry"),
    "motion blur 1.5 % at 30°": (lambda im: _line_smear(im, 0.015, 30), "blurry"),
    "motion blur 1.5 % at 120°": (lambda im: _line_smear(im, 0.015, 120), "blurry"),
    "motion blur 1 % across": (lambda im: _line_smear(im, 0.01, 0), "blurry"),
    "at 2048 px, motion blur 1 % across": (lambda im: _line_smear(_upscaled(im, 2048), 0.01, 0),
                                           "blurry"),
    # added with the second look at twice the detail and the JPEG deblocking (2026-12-04)
    "background blurred, graded (added after)": (_graded_background, "-blurry"),
    "background blurred, small sharp centre (added after)": (_small_sharp_centre, "-blurry"),
    "dark, background blurred (added after)": (lambda im: _scaled(_background_blurred(im), 0.3),
                                               "-blurry"),
    "saved at JPEG quality 75 (added after)": (_saved_at(75), "-blurry"),
    "dark, saved at JPEG quality 60 (added after)": (
        lambda im: _saved_at(60)(_scaled(im, 0.22)), "-blurry"),
    "blur r=3, saved at JPEG quality 75 (added after)": (lambda im: _saved_at(75)(_blur(3)(im)),
                                                         "blurry"),
    "blur r=3, saved at JPEG quality 60 (added after)": (lambda im: _saved_at(60)(_blur(3)(im)),
                                                         "blurry"),
    "at 2048 px, blur r=3, saved at quality 60 (added after)": (
        lambda im: _saved_at(60)(_blur(3)(_upscaled(im, 2048))), "blurry"),
    "blur r=3, with sensor noise σ 4 (added after)": (lambda im: _noisy(_blur(3)(im), 4),
                                                      "blurry"),
    # added after those, to see how much darker or flatter a photo may get (2026-12-04)
    "dark (15 % brightness) (added after)": (lambda im: _scaled(im, 0.15), "-blurry"),
    "low contrast (20 %) (added after)": (lambda im: _scaled(im, 0.2, 100), "-blurry"),
    "watermark (white, 55 % opaque)": (_watermark, "text"),
    "watermark (white, 35 % opaque)": (lambda im: _watermark(im, 90), "text"),
    "caption (meme style)": (_caption, "text"),
    "screenshot of a social app": (_screenshot, "frame"),
    "screenshot, dark mode": (lambda im: _screenshot(im, True), "frame"),
    "letterboxed (black bars)": (_letterboxed, "frame"),
    "duplicate (JPEG q30 of another)": (None, "duplicate"),
    "duplicate (resized to 60%)": (None, "duplicate"),
    "tiny (200 px)": (lambda im: im.resize((200, round(200 * im.height / im.width))), "too_small"),
    "grayscale": (lambda im: im.convert("L").convert("RGB"), "grayscale"),
    "transparent cut-out": (_on_white, "transparency"),
    "EXIF rotation": (_rotated_exif, "exif_rotation"),
}


# Copies made by enlarging the photo: from an original under the training size they are soft
# at training size however large the file (reported on a row of their own, not as errors)
ENLARGED = ("upscaled to 2048 px", "upscaled to 4000 px", "background blurred, at 2048 px")


# Copies are saved as JPEGs at this quality (--quality; 75 is what PIL's save() does unasked)
QUALITY = 95


def _write(img, path: Path):
    if isinstance(img, tuple):  # (picture, how to save it)
        img[0].save(path, **{"quality": QUALITY, **img[1]})
    elif img.mode == "RGBA":
        img.save(path.with_suffix(".png"))
    else:
        img.save(path, quality=QUALITY)


def _checked(copy, folder: Path, resolution: int, name: str):
    """The doctor's PhotoCheck of one copy, written into `folder` as `name` (.png if RGBA)."""
    path = folder / name
    _write(copy, path)
    path = path if path.exists() else path.with_suffix(".png")
    return _check_one(path, resolution, True)


def _one(copy, folder: Path, resolution: int, name: str) -> set:
    """The kinds the doctor gives one photo (duplicates: the photo beside the folder)."""
    return {f.kind for f in _checked(copy, folder, resolution, f"zz_{name}").flags}


def _duplicate_found(subject, k, name, resolution) -> bool:
    photos = sorted((SHARED / subject).glob("*.jpg"))
    other = open_image(photos[(k + 1) % len(photos)])
    copy = _jpeg(other, 30) if "JPEG" in name else other.resize(
        (other.width * 6 // 10, other.height * 6 // 10))
    with tempfile.TemporaryDirectory() as tmp:
        for p in photos:
            Image.open(p).save(Path(tmp) / p.name)
        copy.save(Path(tmp) / "zz_copy.jpg", quality=95)
        report = check_photos(tmp, resolution=resolution, progress=False)
        return "duplicate" in {f.kind for p, f in report.all_flags()
                               if p is not None and p.name == "zz_copy.jpg"}


def run(resolution: int = 512) -> dict:
    result = {"resolution": resolution, "false_alarms": {}, "recall": {}}
    for subject in SUBJECTS:
        report = check_photos(SHARED / subject, resolution=resolution, progress=False)
        result["false_alarms"][subject] = [f"{p.name if p else subject}: {f.kind}" for p, f in
                                           report.all_flags() if f.severity != "note"]
    for name, (make, kind) in DEGRADATIONS.items():
        rows = {}  # row name -> {"calibration": [flagged, of], "held_out": [...]}
        for subject in SUBJECTS:
            for k, victim in enumerate(sorted((SHARED / subject).glob("*.jpg"))):
                original = open_image(victim)
                row = name
                if name in ENLARGED and min(original.size) < resolution:
                    # training enlarges this photo whatever its file size: soft by nature,
                    # and "blurry" is what training sees (the original gets `upscaled`)
                    row = f"{name}, original under {resolution} px"
                if make is None:
                    hit = _duplicate_found(subject, k, name, resolution)
                else:
                    with tempfile.TemporaryDirectory() as tmp:
                        kinds = _one(make(original), Path(tmp), resolution, victim.name)
                    hit = kind.lstrip("-") in kinds
                part = rows.setdefault(row, {"calibration": [0, 0], "held_out": [0, 0]})[
                    "calibration" if subject in CALIBRATION else "held_out"]
                part[0] += hit
                part[1] += 1
        for row, counts in rows.items():
            result["recall"][row] = {"kind": kind if row == name else "soft",
                                     **{p: {"flagged": c[0], "of": c[1]}
                                        for p, c in counts.items()}}
            print(f"{resolution} {row:40} {kind:10} calibration {counts['calibration'][0]:2d}/"
                  f"{counts['calibration'][1]}  held out {counts['held_out'][0]:2d}/"
                  f"{counts['held_out'][1]}", flush=True)
    return result


def values(name: str, resolution: int) -> None:
    """Print what the doctor measures on each copy of one row (which photos, by how much)."""
    make, kind = DEGRADATIONS[name]
    for subject in SUBJECTS:
        for victim in sorted((SHARED / subject).glob("*.jpg")):
            with tempfile.TemporaryDirectory() as tmp:
                c = _checked(make(open_image(victim)), Path(tmp), resolution, victim.name)
            finer = "-" if c.blur_finer is None else f"{c.blur_finer:.3f}"
            print(f"{resolution} {subject:9} {victim.stem} blur {c.blur:.3f} with more detail "
                  f"{finer}  shake {c.shake:4.1f}  {sorted(f.kind for f in c.flags)}", flush=True)


# --margins: how far the measures of sharp and of blurred copies stay from the lines, per band
# of the size of the file the doctor reads (docs/data-doctor.md, "Margins by original size")
SHARP_ROWS = ("as it is", "upscaled to 2048 px", "upscaled to 4000 px", "dark (22 % brightness)",
              "low contrast (30 %)", "background blurred (harsh)",
              "background blurred, at 2048 px")
BLURRED_ROWS = ("blur r=3", "blur r=4", "at 2048 px, blur r=3", "at 2048 px, blur r=4",
                "at 4000 px, blur r=3", "at 4000 px, blur r=8")
SHAKEN_ROWS = ("motion blur 1.5 % across", "at 2048 px, motion blur 1.5 % across",
               "at 2048 px, motion blur 1.5 % diagonal", "at 4000 px, motion blur 1.5 % across")
BANDS = ((0, 1000, "≤ 1000 px"), (1001, 2500, "1000-2500 px"), (2501, 10 ** 6, "> 2500 px"))


def margins(resolution: int) -> dict:
    """Per size band, each with its photo and row: the highest deciding blur (the lower of the
    two looks) and streak among sharp copies, the lowest deciding blur among blurred ones, and
    for shaken ones the copy nearest to passing both lines (its larger share of a line)."""
    from dreamkit.inputs.doctor import MAX_BLUR, MAX_SHAKE
    out = {}
    for rows, what in ((SHARP_ROWS, "sharp"), (BLURRED_ROWS, "blurred"), (SHAKEN_ROWS, "shaken")):
        for name in rows:
            make = DEGRADATIONS[name][0]
            for subject in SUBJECTS:
                for victim in sorted((SHARED / subject).glob("*.jpg")):
                    original = open_image(victim)
                    if what == "sharp" and name in ENLARGED and min(original.size) < resolution:
                        continue  # soft at this size by nature (the recall table's "either")
                    copy = make(original)
                    side = min((copy[0] if isinstance(copy, tuple) else copy).size)
                    band = next(label for lo, hi, label in BANDS if lo <= side <= hi)
                    with tempfile.TemporaryDirectory() as tmp:
                        c = _checked(copy, Path(tmp), resolution, victim.name)
                    blur = c.blur if c.blur_finer is None else min(c.blur, c.blur_finer)
                    where = f"{subject} {victim.stem}, {name}"
                    found = {"sharp": {"sharp blur": blur, "sharp streak": c.shake},
                             # r=3 on 4000 px is 0.38 px at 512, under what training sees
                             "blurred": {"blurred blur" + (", r=3 on 4000 px" if name ==
                                                           "at 4000 px, blur r=3" else ""): blur},
                             "shaken": {"shaken, share of the nearer line":
                                        max(blur / MAX_BLUR, c.shake / MAX_SHAKE)}}[what]
                    b = out.setdefault(band, {})
                    for key, value in found.items():
                        worst = max if what == "sharp" else min
                        if key not in b or worst(value, b[key][0]) == value:
                            b[key] = (round(value, 3), where
                                      + f" (blur {blur:.3f}, streak {c.shake:.1f})")
    for band, b in out.items():
        print(resolution, band, f"lines {MAX_BLUR} and {MAX_SHAKE}")
        for key, (value, where) in sorted(b.items()):
            print(f"    {key:34} {value:6.3f}  {where}", flush=True)
    return out


if __name__ == "__main__":
    if not SHARED.is_dir():
        sys.exit(f"the DreamBooth photos are not at {SHARED}")
    if "--quality" in sys.argv:  # e.g. --quality 75: every copy saved as PIL saves unasked
        QUALITY = int(sys.argv[sys.argv.index("--quality") + 1])
    if "--margins" in sys.argv:
        got = {str(r): margins(r) for r in (512, 1024)}
        text = json.dumps(got, indent=1, ensure_ascii=False) + "\n"
        Path(__file__).with_name("doctor_margins.json").write_text(text)
        sys.exit(0)
    if "--values" in sys.argv:  # e.g. --values "background blurred (harsh)": per photo
        for r in (512, 1024):
            values(sys.argv[sys.argv.index("--values") + 1], r)
        sys.exit(0)
    out = {str(r): run(r) for r in (512, 1024)}
    name = "doctor_recall.json" if QUALITY == 95 else f"doctor_recall_q{QUALITY}.json"
    Path(__file__).with_name(name).write_text(json.dumps(out, indent=1) + "\n")
    for r, res in out.items():
        print(r, "false alarms:", {k: v for k, v in res["false_alarms"].items() if v})
