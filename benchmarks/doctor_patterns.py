"""The camera-shake rule on sharp photos wearing regular patterns (held out from its calibration).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/doctor_patterns.py   # -> doctor_patterns.json

A regular pattern makes dips in the cepstrum as a smear does (docs/data-doctor.md, "Camera
shake"). Three sets of sharp photos, each judged at 512 and 1024 from a copy at twice the
training size, counting those called blurry (every one is a false alarm):
- stripes: dog 00 with a red shirt of square-wave stripes over a fifth of it, period 6-40 px
  (at 1024), six angles, drawn smooth-edged (supersampled, as a lens draws them);
- stair-stepped stripes: the same drawn with hard edges (as computer graphics draw them);
- knits and checks: the first photo of four subjects with a zigzag knit or a checkerboard over
  17 % or 28 % of it, period 16, 24 or 32 px (at 1024);
- held out: patterns, photos, periods and a colour that were not looked at while the pattern
  rule was chosen (the knits and checks were): herringbone, dots, bricks and gingham over 28 %
  of another photo of four subjects, period 20, 28 or 36 px (at 1024).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from dreamkit.inputs.doctor import _check_one

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dreambooth"
N = 1024  # the patterns are drawn on the photo squeezed to N x N
SS = 4  # supersampling of the smooth-edged patterns


def _grid():
    yy, xx = np.mgrid[0:N * SS, 0:N * SS].astype(np.float32) / SS
    return yy, xx


def _smooth(a: np.ndarray) -> np.ndarray:
    return a.reshape(N, SS, N, SS).mean(axis=(1, 3))


def _stripes(period, degrees, smooth):
    if smooth:
        yy, xx = _grid()
    else:
        yy, xx = np.mgrid[0:N, 0:N].astype(np.float32)
    a = np.deg2rad(degrees)
    wave = np.sign(np.sin((xx * np.cos(a) + yy * np.sin(a)) / period * 2 * np.pi))
    return _smooth(wave) if smooth else wave


def _knit(period):
    yy, xx = _grid()
    return _smooth(np.sin(xx / period * 2 * np.pi + 2 * np.abs(np.sin(yy / period * np.pi))) > 0)


def _checks(period):
    yy, xx = _grid()
    return _smooth(((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(np.float32))


def _held_out_patterns(period):
    yy, xx = _grid()
    flip = np.where((np.floor(yy / period) % 2) == 0, 1, -1)
    return {"herringbone": _smooth(np.sin((xx + flip * (yy % period)) / period * 2 * np.pi) > 0),
            "dots": _smooth(((xx % period) - period / 2) ** 2 + ((yy % period) - period / 2) ** 2
                            < (period / 3) ** 2),
            "bricks": _smooth((np.abs((yy % period) - period / 2) < period * 0.4)
                              & (np.abs(((xx + (np.floor(yy / period) % 2) * period)
                                         % (2 * period)) - period) < period * 0.9)),
            "gingham": _smooth(0.5 * ((xx % period) < period / 2)
                               + 0.5 * ((yy % period) < period / 2))}


def _judged(photo: np.ndarray, pattern: np.ndarray, inside, colour, low, tmp: Path) -> dict:
    """{resolution: streak, called blurry} of the photo wearing the pattern inside the mask."""
    img = photo.copy()
    img[inside] = (np.array(colour, np.float32) * (low + (1 - low) * pattern[..., None]))[inside]
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    out = {}
    for res in (512, 1024):
        im.resize((2 * res, 2 * res), Image.LANCZOS).save(tmp / "x.jpg", quality=92)
        check = _check_one(tmp / "x.jpg", res, True)
        out[res] = (round(check.shake, 2), "blurry" in {f.kind for f in check.flags})
    return out


def _photo(subject: str, k: int = 0) -> np.ndarray:
    path = sorted((SHARED / subject).glob("*.jpg"))[k]
    return np.asarray(Image.open(path).convert("RGB").resize((N, N)), np.float32)


def run() -> dict:
    tmp = Path(tempfile.mkdtemp())
    y, x = np.mgrid[0:N, 0:N]
    shirt = ((x - 512) / 300) ** 2 + ((y - 600) / 250) ** 2 < 1
    sets = {"stripes": [], "stair-stepped stripes": [], "knits and checks": [], "held out": []}
    dog = _photo("dog")
    for period in (6, 8, 10, 14, 20, 28, 40):
        for degrees in (0, 15, 30, 45, 60, 90):
            for smooth, name in ((True, "stripes"), (False, "stair-stepped stripes")):
                r = _judged(dog, (_stripes(period, degrees, smooth) + 1) / 2, shirt,
                            (200, 60, 60), 0.5, tmp)
                sets[name] += [{"period": period, "degrees": degrees, "resolution": res,
                                "streak": s, "blurry": b} for res, (s, b) in r.items()]
    for subject in ("backpack", "cat2", "dog", "teapot"):
        photo = _photo(subject)
        for period in (16, 24, 32):
            for kind, pattern in (("knit", _knit(period)), ("checks", _checks(period))):
                for ax, ay in ((0.25, 0.22), (0.32, 0.28)):
                    inside = ((x - 512) / (ax * N)) ** 2 + ((y - 540) / (ay * N)) ** 2 < 1
                    r = _judged(photo, pattern, inside, (40, 90, 170), 0.6, tmp)
                    sets["knits and checks"] += [
                        {"subject": subject, "kind": kind, "period": period,
                         "cover": round(float(inside.mean()), 2), "resolution": res,
                         "streak": s, "blurry": b} for res, (s, b) in r.items()]
    inside = ((x - 500) / (0.28 * N)) ** 2 + ((y - 530) / (0.3 * N)) ** 2 < 1
    for subject, k in (("duck_toy", 1), ("cat2", 2), ("backpack", 3), ("teapot", 2)):
        photo = _photo(subject, k)
        for period in (20, 28, 36):
            for kind, pattern in _held_out_patterns(period).items():
                r = _judged(photo, pattern, inside, (150, 40, 60), 0.45, tmp)
                sets["held out"] += [
                    {"subject": subject, "photo": k, "kind": kind, "period": period,
                     "resolution": res, "streak": s, "blurry": b} for res, (s, b) in r.items()]
    summary = {name: {"called_blurry": sum(r["blurry"] for r in rows), "of": len(rows),
                      "highest_streak": max(r["streak"] for r in rows)}
               for name, rows in sets.items()}
    return {"summary": summary, "pictures": sets}


if __name__ == "__main__":
    if not SHARED.is_dir():
        sys.exit(f"the real photos are not at {SHARED}")
    result = run()
    for name, s in result["summary"].items():
        print(f"{name:24} called blurry {s['called_blurry']:3d} of {s['of']:3d}; "
              f"highest streak {s['highest_streak']:.1f}")
    out = Path(__file__).with_suffix(".json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {out}")
