"""The `text` warning on stock-photo watermarks tiled at a slant over the whole photo.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/doctor_watermarks.py   # -> doctor_watermarks.json

Every photo of the five shared subjects gets rows of see-through writing over all of it,
turned by some angle (rising to the right when positive), saved as JPEG and checked at 512 and
1024; counted: the copies that get a `text` warning. Also counted: the originals (every
warning there is a false alarm). Two sets:
- looked at while slanted_text_lines was built (inputs/overlays.py; its slants 15-60° in
  steps of 15°): "© STOCK PHOTO" in white at 30°, -30° and 45° (denser, fainter);
- held out: other words, slants between the tried ones, black writing: "iStock by Getty
  Images" at 22°, "Adobe Stock | #48213" at 38°, "alamy  a1b2c3" at -40°, "PROOF - DO NOT
  COPY" in black at 33°. Not blind: an earlier version (turns of ±30° and ±45° only, each
  letter on the first one's line) named 1, 0, 0 and 5 of 25 of them at 512, which is why the
  turns went to every 15° with each letter on the line of the one before; nothing was changed
  after that.
Then one line across the middle (a big centred watermark): "shutterstock" (looked at while a
line was let go on past taller letters), and held out: "depositphotos", a large "alamy",
"Getty Images", "preview only - licensed" in black. Held out here means made before that
change and measured once before and once after it.
Calibration subjects (backpack, cat2, dog) and held-out ones (duck_toy, teapot) apart.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from dreamkit.inputs.doctor import _check_one

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dreambooth"
CALIBRATION = ("backpack", "cat2", "dog")


def tiled(img, degrees: float, text: str, alpha: int, ink=(255, 255, 255), size=0.07,
          rows=0.22, cols=0.55):
    """`text` in staggered rows over all of `img`, turned `degrees`, `alpha` of 255 opaque."""
    w, h = img.size
    layer = Image.new("RGBA", (2 * w, 2 * h), (0, 0, 0, 0))
    draw, font = ImageDraw.Draw(layer), ImageFont.load_default(size=int(h * size))
    for row, y in enumerate(range(0, 2 * h, int(h * rows))):
        for x in range(0, 2 * w, int(w * cols)):
            draw.text((x + row % 2 * w * cols / 2, y), text, font=font, fill=(*ink, alpha))
    layer = layer.rotate(degrees, center=(w, h)).crop((w // 2, h // 2, w // 2 + w, h // 2 + h))
    return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")


COPIES = {
    "original (false alarms)": lambda im: im,
    "© STOCK PHOTO, 30°": lambda im: tiled(im, 30, "© STOCK PHOTO", 110),
    "© STOCK PHOTO, -30°": lambda im: tiled(im, -30, "© STOCK PHOTO", 110),
    "© STOCK PHOTO, 45°, denser, fainter": lambda im: tiled(im, 45, "© STOCK PHOTO", 90),
    "held out: iStock by Getty Images, 22°": lambda im: tiled(im, 22, "iStock by Getty Images",
                                                              120),
    "held out: Adobe Stock | #48213, 38°": lambda im: tiled(im, 38, "Adobe Stock | #48213", 100),
    "held out: alamy  a1b2c3, -40°": lambda im: tiled(im, -40, "alamy  a1b2c3", 130),
    "held out: PROOF - DO NOT COPY, black, 33°": lambda im: tiled(
        im, 33, "PROOF - DO NOT COPY", 90, ink=(0, 0, 0), size=0.05, rows=0.15, cols=0.4),
}


def centred(text: str, alpha: int, size: float, y: float, ink=(255, 255, 255)):
    """One line of `text` across the middle of the photo, `size` of its height tall."""
    def make(img):
        w, h = img.size
        layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
        draw, font = ImageDraw.Draw(layer), ImageFont.load_default(size=int(h * size))
        draw.text(((w - draw.textlength(text, font=font)) / 2, h * y), text, font=font,
                  fill=(*ink, alpha))
        return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB")
    return make


COPIES.update({  # one line across (2026-12-03: a line goes on past taller letters)
    "across: shutterstock, white, half opaque (looked at)": centred("shutterstock", 128, 0.12,
                                                                     0.44),
    "across, held out: depositphotos": centred("depositphotos", 140, 0.10, 0.5),
    "across, held out: alamy, large": centred("alamy", 150, 0.2, 0.4),
    "across, held out: Getty Images": centred("Getty Images", 130, 0.09, 0.3),
    "across, held out: preview only - licensed, black": centred("preview only - licensed", 120,
                                                                0.06, 0.6, ink=(0, 0, 0)),
})


def main() -> dict:
    photos = sorted(SHARED.glob("*/*.jpg"))
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in COPIES.items():
            for res in (512, 1024):
                counts = {"calibration": [0, 0], "held out": [0, 0]}
                for p in photos:
                    path = Path(tmp) / "copy.jpg"
                    make(Image.open(p).convert("RGB")).save(path, quality=92)
                    hit = any(f.kind == "text" for f in _check_one(path, res, True).flags)
                    part = counts["calibration" if p.parent.name in CALIBRATION else "held out"]
                    part[0] += hit
                    part[1] += 1
                result[f"{name} @ {res}"] = {k: f"{a}/{b}" for k, (a, b) in counts.items()}
                print(f"{name:44} {res:5}  calibration {result[f'{name} @ {res}']['calibration']:6}"
                      f"  held out {result[f'{name} @ {res}']['held out']}", flush=True)
    out = Path(__file__).with_suffix(".json")
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
