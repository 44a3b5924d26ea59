"""The dataset doctor on any folder of sharp photos it was not tuned on, and on copies of them.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/doctor_elsewhere.py FOLDER [--out FILE.json]
        [--label "where the photos come from"]

Give it photos you know to be sharp (your own, a camera's samples, a desktop's wallpapers; not
drawings). Each is checked as it is (the file, at its own JPEG quality) and as copies made the
way benchmarks/doctor_recall.py makes them, at 512 and 1024: the harmless copies (darker,
flatter, saved at JPEG quality 75, a harshly blurred background, enlarged) must not be called
blurry, the blurred ones must. The photos that go wrong are named with what the doctor measured
(blur at training size / with more detail / camera-shake streak), so a verdict can be checked
by eye. Copies of a photo enlarged past its own size (at 1024, a photo under 1024 px) are soft
by nature and left out of the 1024 rows. Three runs are in docs/data-doctor.md: 11 wallpapers
(doctor_elsewhere.json), 11 photographs of smooth subjects and 14 of phone or camera size
(--out benchmarks/doctor_elsewhere_mate.json, doctor_elsewhere_lomiri.json).
"""

from __future__ import annotations

import json
import sys
import tempfile
from multiprocessing import Pool
from pathlib import Path

from doctor_recall import (_background_blurred, _blur, _checked, _motion, _saved_at, _scaled,
                           _upscaled)
from dreamkit.inputs.doctor import _check_one
from dreamkit.inputs.photos import find_images, open_image

# name -> (the copy, from the upright photo; "+" it must be called blurry, "-" it must not)
COPIES = {
    "as it is": (None, "-"),  # the file itself (_one)
    "saved at JPEG quality 75": (_saved_at(75), "-"),
    "dark (22 %)": (lambda im: _scaled(im, 0.22), "-"),
    "dark (22 %), saved at 75": (lambda im: _saved_at(75)(_scaled(im, 0.22)), "-"),
    "low contrast (30 %)": (lambda im: _scaled(im, 0.3, 90), "-"),
    "background blurred (harsh)": (_background_blurred, "-"),
    "background blurred, saved at 75": (lambda im: _saved_at(75)(_background_blurred(im)), "-"),
    "upscaled to 4000 px": (lambda im: _upscaled(im, 4000), "-"),
    "blur r=2": (_blur(2), "+"),
    "blur r=3": (_blur(3), "+"),
    "blur r=3, saved at 75": (lambda im: _saved_at(75)(_blur(3)(im)), "+"),
    "at 4000 px, blur r=3": (lambda im: _blur(3)(_upscaled(im, 4000)), "+"),
    "at 4000 px, blur r=8": (lambda im: _blur(8)(_upscaled(im, 4000)), "+"),
    "motion blur 1.5 % across": (_motion, "+"),
    "at 4000 px, motion blur 1.5 % across": (lambda im: _motion(_upscaled(im, 4000)), "+"),
}


def _one(job):
    name, photo, resolution = job
    make, _ = COPIES[name]
    if name == "as it is":  # the file itself, saved at its own quality, as a user has it
        c = _check_one(Path(photo), resolution, True)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            c = _checked(make(open_image(photo)), Path(tmp), resolution, Path(photo).stem + ".jpg")
    finer = "-" if c.blur_finer is None else f"{c.blur_finer:.2f}"
    return {"copy": name, "photo": Path(photo).name, "resolution": resolution,
            "blurry": "blurry" in {f.kind for f in c.flags},
            "measured": f"{c.blur:.2f}/{finer}/{c.shake:.1f}"}


def run(folder: Path, label: str | None = None) -> dict:
    photos = find_images(folder).images
    sizes = {str(p): min(open_image(p).size) for p in photos}
    jobs = [(n, str(p), r) for r in (512, 1024) for n in COPIES for p in photos
            if r == 512 or sizes[str(p)] >= r]  # a photo enlarged to 1024 is soft: left out
    with Pool(2) as pool:
        results = pool.map(_one, jobs, chunksize=1)
    table = {}
    for r in (512, 1024):
        for name, (_, want) in COPIES.items():
            rows = [x for x in results if x["copy"] == name and x["resolution"] == r]
            wrong = [f"{x['photo']} ({x['measured']})" for x in rows
                     if x["blurry"] != (want == "+")]
            table[f"{r} {name}"] = {"expected": "blurry" if want == "+" else "-blurry",
                                    "flagged": sum(x["blurry"] for x in rows), "of": len(rows),
                                    "wrong": wrong}
            print(f"{r} {name:38} {want} called blurry {table[f'{r} {name}']['flagged']:2d}/"
                  f"{len(rows)}", ("wrong: " + ", ".join(wrong)) if wrong else "", flush=True)
    return {"photos from": label or str(folder), "photos": [p.name for p in photos], "table": table}


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit(__doc__)
    label = sys.argv[sys.argv.index("--label") + 1] if "--label" in sys.argv else None
    result = run(Path(sys.argv[1]), label)
    if "--out" in sys.argv:
        Path(sys.argv[sys.argv.index("--out") + 1]).write_text(json.dumps(result, indent=1) + "\n")
