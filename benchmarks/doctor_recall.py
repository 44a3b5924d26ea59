"""The dataset doctor on the DreamBooth dataset's real photos and on degraded copies of them.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/doctor_recall.py   # -> doctor_recall.json

For each of the five subjects in ../shared/data/dreambooth: the folder as it is (false alarms),
then, one photo at a time, the folder with that photo replaced by a degraded copy, and whether
the doctor flags the copy with the expected kind (recall). Degradations are made at the
photo's own size (768-1920 px); `resolution` is the training size the doctor judges at.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageFilter

from dreamkit.inputs.photos import open_image
from dreamkit.inputs.doctor import check_photos

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dreambooth"
SUBJECTS = ["backpack", "cat2", "dog", "duck_toy", "teapot"]


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


def _rotated_exif(img):
    """Stored sideways with EXIF orientation 6, as phones do."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return img.transpose(Image.Transpose.ROTATE_90), exif


# name -> (make the degraded copy from the upright original, the flag expected)
DEGRADATIONS = {
    "blur r=2": (lambda im: im.filter(ImageFilter.GaussianBlur(2)), "blurry"),
    "blur r=3": (lambda im: im.filter(ImageFilter.GaussianBlur(3)), "blurry"),
    "blur r=4": (lambda im: im.filter(ImageFilter.GaussianBlur(4)), "blurry"),
    "blur r=3 at 2048 px": (lambda im: im.resize((round(im.width * 2048 / min(im.size)),
                                                  round(im.height * 2048 / min(im.size))))
                            .filter(ImageFilter.GaussianBlur(3)), "blurry"),
    "duplicate (JPEG q30 of another)": (None, "duplicate"),
    "duplicate (resized to 60%)": (None, "duplicate"),
    "tiny (200 px)": (lambda im: im.resize((200, round(200 * im.height / im.width))), "too_small"),
    "grayscale": (lambda im: im.convert("L").convert("RGB"), "grayscale"),
    "transparent cut-out": (_on_white, "transparency"),
    "EXIF rotation": (_rotated_exif, "exif_rotation"),
}


def _write(img, path: Path):
    if isinstance(img, tuple):
        img[0].save(path, exif=img[1], quality=95)
    elif img.mode == "RGBA":
        img.save(path.with_suffix(".png"))
    else:
        img.save(path, quality=95)


def run(resolution: int = 512) -> dict:
    result = {"resolution": resolution, "false_alarms": {}, "recall": {}}
    for subject in SUBJECTS:
        report = check_photos(SHARED / subject, resolution=resolution, progress=False)
        result["false_alarms"][subject] = [f"{p.name if p else subject}: {f.kind}" for p, f in
                                           report.all_flags() if f.severity != "note"]
    for name, (make, kind) in DEGRADATIONS.items():
        hits, total = 0, 0
        for subject in SUBJECTS:
            photos = sorted((SHARED / subject).glob("*.jpg"))
            for k, victim in enumerate(photos):
                with tempfile.TemporaryDirectory() as tmp:
                    folder = Path(tmp)
                    for p in photos:
                        if p != victim:
                            shutil.copy2(p, folder / p.name)
                    original = open_image(victim)
                    if make is None:  # a copy of its neighbour, slightly changed
                        other = open_image(photos[(k + 1) % len(photos)])
                        copy = _jpeg(other, 30) if "JPEG" in name else other.resize(
                            (other.width * 6 // 10, other.height * 6 // 10))
                    else:
                        copy = make(original)
                    _write(copy, folder / f"zz_{victim.name}")
                    report = check_photos(folder, resolution=resolution, progress=False)
                    kinds = {f.kind for p, f in report.all_flags()
                             if p is not None and p.name.startswith("zz_")}
                    hits += kind in kinds
                    total += 1
        result["recall"][name] = {"flagged": hits, "of": total, "kind": kind}
        print(f"{name:34} {hits:2d}/{total} flagged {kind}", flush=True)
    return result


if __name__ == "__main__":
    if not SHARED.is_dir():
        sys.exit(f"the DreamBooth photos are not at {SHARED}")
    out = {str(r): run(r) for r in (512, 1024)}
    Path(__file__).with_name("doctor_recall.json").write_text(json.dumps(out, indent=1) + "\n")
    for r, res in out.items():
        print(r, "false alarms:", {k: v for k, v in res["false_alarms"].items() if v})
