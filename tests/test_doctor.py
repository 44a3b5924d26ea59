"""The dataset doctor: each defect is built on purpose and must be flagged; clean photos not."""

import io
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from dreamkit.inputs.doctor import check_photos, crop_box, fix_photos

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dreambooth"
SUBJECTS = ["backpack", "cat2", "dog", "duck_toy", "teapot"]


def scene(seed: int, size=(640, 640)) -> Image.Image:
    """A sharp synthetic photo: shapes with crisp edges on a noisy gradient."""
    rng = random.Random(seed)
    w, h = size
    base = np.linspace(40, 200, w, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
    base += np.random.default_rng(seed).normal(0, 6, base.shape)
    img = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(12):
        x, y, r = rng.randrange(w), rng.randrange(h), rng.randrange(20, 120)
        fill = tuple(rng.randrange(256) for _ in range(3))
        (d.ellipse if rng.random() < 0.5 else d.rectangle)((x - r, y - r, x + r, y + r), fill=fill)
    return img


def write_clean(folder: Path, n: int = 5, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        p = folder / f"photo_{i:02d}.jpg"
        scene(i).save(p, quality=95)
        paths.append(p)
    return paths


def flagged(report, name):
    return report.kinds(report.folder / name)


def test_clean_synthetic_photos_have_no_remarks(tmp_path):
    write_clean(tmp_path / "p")
    report = check_photos(tmp_path / "p", progress=False)
    assert report.ok and report.count("warning") == 0, report.text()
    assert "0 problem(s), 0 warning(s)" in report.text()


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/dreambooth is not present")
@pytest.mark.parametrize("subject", SUBJECTS)
def test_real_photos_raise_no_false_alarm(subject):
    from dreamkit.inputs.doctor import MAX_BLUR, MAX_SHAKE

    # cat2's 00, 01 and 04 are padded to squares with black bars, which training would learn:
    # that warning is the only remark the real photos get, at 512 and at 1024 (besides 1024's
    # "upscaled" for photos under 1024 px)
    bars = {"00.jpg", "01.jpg", "04.jpg"} if subject == "cat2" else set()
    for resolution in (512, 1024):
        report = check_photos(SHARED / subject, resolution=resolution, progress=False)
        remarks = [(p.name, f.kind) for p, f in report.all_flags() if f.kind != "upscaled"]
        assert {name for name, kind in remarks if kind == "frame"} <= bars, report.text()
        assert all(kind == "frame" for _, kind in remarks), report.text()
        for p in report.photos:
            assert p.blur < MAX_BLUR and p.shake < MAX_SHAKE, (p.path, p.blur, p.shake)
    if bars:
        report = check_photos(SHARED / subject, progress=False)
        assert {p.name for p, f in report.all_flags() if f.kind == "frame"} == bars
        assert "flat bars around the photo (top 17%, bottom 17%)" in report.text()


def _upscaled(img, side):
    s = side / min(img.size)
    return img.resize((round(img.width * s), round(img.height * s)), Image.Resampling.BICUBIC)


def _motion(img, share=0.015):
    """Smeared across by `share` of the width (an odd number of pixels)."""
    smeared = _smeared(np.asarray(img, np.float32), round(img.width * share) | 1, axis=1)
    return Image.fromarray(smeared.astype(np.uint8))


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/dreambooth is not present")
def test_degraded_real_photos_phone_size(tmp_path):
    """Blur judged at training size, whatever the original size; dark and low-contrast copies
    are not blurry; writing over the photo and a screenshot's frame are named. On photos of a
    subject the threshold was set on (dog) and of one held out from that (teapot)."""
    from dreamkit.inputs.doctor import MAX_BLUR, MAX_SHAKE, _check_one

    said = _check_one(_saved(_motion(_upscaled(Image.open(SHARED / "dog" / "00.jpg"), 2048)),
                             tmp_path / "said.jpg"), 512, True).flags
    assert [f.kind for f in said] == ["blurry"]  # and says what else looks like blur
    assert "enlarged from a smaller photo" in said[0].message and "at least 512 px" in said[0].fix

    def kinds(img, name, resolution=512, quality=92):
        img.save(tmp_path / name, quality=quality)
        return {f.kind for f in _check_one(tmp_path / name, resolution, True).flags}

    photos = [p for subject in ("dog", "teapot")
              for p in sorted((SHARED / subject).glob("*.jpg"))[:2]]
    for k, path in enumerate(photos):
        photo = Image.open(path).convert("RGB")
        phone = _upscaled(photo, 2048)
        assert "blurry" in kinds(phone.filter(ImageFilter.GaussianBlur(3)), f"b{k}.jpg")
        assert "blurry" in kinds(_motion(phone), f"m{k}.jpg")
        assert "blurry" in kinds(_upscaled(photo, 4000).filter(ImageFilter.GaussianBlur(3)),
                                 f"b4k{k}.jpg", 1024)
        if min(photo.size) >= 1024:  # enlarging a photo training shrinks anyway adds no blur
            assert "blurry" not in kinds(phone, f"p{k}.jpg", 1024)
        # shaken at the photo's own size, judged at 1024: the sharpest tiles keep crisp
        # outlines across the smear; the smear's own signature gives it away
        _motion(photo).save(tmp_path / f"s{k}.jpg", quality=92)
        shaken = _check_one(tmp_path / f"s{k}.jpg", 1024, True)
        assert shaken.shake >= MAX_SHAKE, (path, shaken.shake)
        said = [f.message for f in shaken.flags if f.kind == "blurry"]
        assert said and (shaken.blur >= MAX_BLUR or "px across" in said[0]), said
        if shaken.blur < MAX_BLUR:  # the shake's own words, and when they may be wrong
            fix = next(f.fix for f in shaken.flags if "looks shaken" in f.message)
            assert "steady camera" in fix and "a regular pattern" in fix, fix
        # a shallow depth of field, harshly: all but a central ellipse blurred. At 512 teapot
        # 00's matte outline shares every 64 px tile with the blur (0.69, blurry before the
        # second look); with twice the detail it measures 0.50
        yy, xx = np.mgrid[:photo.height, :photo.width]
        keep = ((xx / photo.width - 0.5) ** 2 + (yy / photo.height - 0.5) ** 2) <= 0.22 ** 2
        soft = np.asarray(photo.filter(ImageFilter.GaussianBlur(photo.width * 0.01)))
        shallow = Image.fromarray(np.where(keep[..., None], np.asarray(photo), soft))
        assert "blurry" not in kinds(shallow, f"f{k}.jpg"), path
        # saved again with PIL's default quality (75), as a messaging app would: the block
        # edges looked crisp to the blur measure (dog 00 at 1024: 0.53, now 0.83)
        blurred = photo.filter(ImageFilter.GaussianBlur(3))
        for resolution in (512, 1024):
            assert "blurry" in kinds(blurred, f"q{k}.jpg", resolution, 75), (path, resolution)
            assert "blurry" not in kinds(photo, f"k{k}.jpg", resolution, 60), (path, resolution)
        dark = Image.fromarray((np.asarray(photo, np.float32) * 0.22).astype(np.uint8))
        low = Image.fromarray((np.asarray(photo, np.float32) * 0.3 + 90).astype(np.uint8))
        for resolution in (512, 1024):
            assert kinds(dark, f"d{k}.jpg", resolution) <= {"upscaled"}
            assert kinds(low, f"l{k}.jpg", resolution) <= {"upscaled"}
        marked = photo.copy()
        font = ImageFont.load_default(size=marked.height // 11)
        ImageDraw.Draw(marked).text((40, marked.height * 0.4), "© STOCK PREVIEW", font=font,
                                    fill=(255, 255, 255))
        assert kinds(marked, f"w{k}.jpg") == {"text"}
        page = Image.new("RGB", (1080, 2340), (255, 255, 255))
        d = ImageDraw.Draw(page)
        d.text((40, 25), "9:41", font=ImageFont.load_default(size=42), fill=(0, 0, 0))
        d.text((140, 160), "some.user  · Follow", font=ImageFont.load_default(size=40),
               fill=(0, 0, 0))
        page.paste(photo.resize((1080, 1080)), (0, 260))
        d.text((40, 1400), "1,234 likes", font=ImageFont.load_default(size=38), fill=(0, 0, 0))
        d.rectangle((0, 2200, 1080, 2340), fill=(240, 240, 240))  # the phone's navigation bar
        found = _check_one(_saved(page, tmp_path / f"s{k}.png"), 512, True).flags
        assert sorted(f.kind for f in found) == ["aspect", "frame"]
        assert any("looks like a screenshot" in f.message for f in found)


def _smeared(a: np.ndarray, n: int, axis: int) -> np.ndarray:
    """The picture averaged over n positions along one axis: a straight smear of n px."""
    pad = np.pad(a, [(n // 2, n // 2) if i == axis else (0, 0) for i in range(a.ndim)], "edge")
    out = np.zeros_like(a)
    for i in range(n):  # added in place, as views: 3x faster on phone-size copies than np.take
        out += pad[(slice(None),) * axis + (slice(i, i + a.shape[axis]),)]
    return out / n


def test_a_camera_shake_is_read_with_its_length_and_direction():
    """motion_streak finds a straight smear's length and direction in any picture; a sharp
    one measures far below the doctor's threshold."""
    from dreamkit.inputs.doctor import MAX_SHAKE
    from dreamkit.inputs.photo_measures import motion_streak

    for seed in (0, 1):
        gray = np.asarray(scene(seed).convert("L"), np.float32)
        sharp = motion_streak(gray)[0]
        assert sharp < MAX_SHAKE / 2, sharp
        strength, length, angle = motion_streak(_smeared(gray, 13, 1))
        assert strength > 2 * MAX_SHAKE and length == 13 and angle == 0
        strength, length, angle = motion_streak(_smeared(gray, 9, 0))
        assert strength > 2 * MAX_SHAKE and length == 9 and angle == 90
    assert motion_streak(np.zeros((100, 900))) == (0.0, 0.0, 0.0)  # smaller than a tile


def _knit(img: Image.Image, period: int, ss: int = 4) -> np.ndarray:
    """A zigzag knit over a central ellipse (a quarter of the picture), drawn smooth-edged."""
    a = np.asarray(img.convert("L"), np.float32).copy()
    h, w = a.shape
    yy, xx = np.mgrid[0:h * ss, 0:w * ss].astype(np.float32) / ss
    wave = np.sin(xx / period * 2 * np.pi + 2 * np.abs(np.sin(yy / period * np.pi))) > 0
    wave = wave.reshape(h, ss, w, ss).mean(axis=(1, 3))
    y, x = np.mgrid[0:h, 0:w]
    inside = ((x - w / 2) / (0.3 * w)) ** 2 + ((y - h / 2) / (0.27 * h)) ** 2 < 1
    a[inside] = (60 + 80 * wave)[inside]
    return a


def test_the_parts_of_a_mask_join_diagonal_neighbours():
    from dreamkit.inputs.overlays import _components
    m = np.zeros((7, 9), bool)
    m[0, 0:2] = m[1, 2] = m[2, 1:4] = True  # one part: diagonal steps join the rows
    m[4, 5:9] = m[5, 5] = m[6, 6] = True  # another: 6, 6 touches 5, 5 at a corner
    m[6, 8] = True  # alone: the row above is empty there
    assert sorted(_components(m)) == [[0, 0, 2, 3, 6], [4, 5, 6, 8, 6], [6, 8, 6, 8, 1]]
    assert _components(np.zeros((3, 3), bool)) == []


def test_bars_end_on_one_row_even_where_the_photo_starts_dark():
    """Black bars above and below a photo whose top is a dark floor (half of its first rows
    as black as the bar) are bars; a dark backdrop that gives way to the subject column by
    column, over many rows, is the photo's own background."""
    from dreamkit.inputs.overlays import border_bands
    rng = np.random.default_rng(0)
    photo = rng.integers(90, 220, (300, 480, 3)).astype(np.uint8)
    photo[:40, :240] = photo[-40:, 240:] = 3  # dark ground at the photo's top and bottom
    boxed = np.zeros((400, 480, 3), np.uint8)
    boxed[50:350] = photo
    bands = border_bands(boxed)
    assert round(bands["top"][0], 3) == round(bands["bottom"][0], 3) == 0.125, bands
    assert bands["left"][0] == bands["right"][0] == 0, bands
    # a subject rising into a black backdrop: each column leaves the black at its own row
    faded = rng.integers(90, 220, (400, 480, 3)).astype(np.uint8)
    top = (120 - 80 * np.sin(np.linspace(0, np.pi, 480))).astype(int)
    for x, y in enumerate(top):
        faded[:y, x] = 3
        faded[400 - y:, x] = 3
    assert all(depth == 0 for depth, _ in border_bands(faded).values()), border_bands(faded)


def test_a_line_of_letters_goes_on_past_taller_ones():
    """Six short letters on one line with three taller ones among them (the h and k of a
    lowercase word): one line of six, not two short ones broken at the tall letters."""
    from dreamkit.inputs.overlays import text_lines
    im = Image.fromarray(np.full((512, 512), 100, np.uint8))
    draw, x = ImageDraw.Draw(im), 100
    for tall in (0, 0, 1, 1, 1, 0, 0, 0, 0):
        height = 32 if tall else 20
        draw.rectangle((x, 300 - height, x + 13, 299), outline=200, width=3)  # a hollow mark
        x += 20
    assert [n for _, _, n in text_lines(np.asarray(im))] == [6]


def test_a_slanted_tiled_watermark_is_named(tmp_path):
    """Writing across the photo at a slant (a stock photo's watermark), at a slant the doctor
    turns the picture by (30°) and at one between two of them (38°); the same photos without
    it stay clean."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(  # the benchmark's watermark, drawn once
        "doctor_watermarks", Path(__file__).resolve().parents[1] / "benchmarks" /
        "doctor_watermarks.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    folder = tmp_path / "p"
    write_clean(folder, 3)
    for k, degrees in enumerate((30, -38)):
        bench.tiled(scene(10 + k), degrees, "© STOCK PHOTO", 120).save(folder / f"marked_{k}.jpg",
                                                                     quality=92)
    report = check_photos(folder, progress=False)
    for k in range(3):
        assert flagged(report, f"photo_{k:02d}.jpg") == set(), report.text()
    for k in range(2):
        assert flagged(report, f"marked_{k}.jpg") == {"text"}, report.text()
    assert "letters at a slant, about 30°" in report.text()
    assert "cannot be cropped away: use the original photo" in report.text()


def test_a_regular_pattern_is_not_a_camera_shake():
    """A knit dips in the cepstrum at half its period, as a smear does at its length, but
    peaks at its period, where a smear dips again: measured 11-18 before that was looked at
    (a false 'shaken'), under 9 now; smeared, the same picture still reads as the smear."""
    from dreamkit.inputs.doctor import MAX_SHAKE
    from dreamkit.inputs.photo_measures import motion_streak

    for seed, period in ((0, 16), (1, 24)):
        knitted = _knit(scene(seed, (1024, 1024)), period)
        assert motion_streak(knitted)[0] < MAX_SHAKE
        strength, length, angle = motion_streak(_smeared(knitted, 13, 1))
        assert strength > 2 * MAX_SHAKE and (length, angle) == (13, 0)


def _saved(img, path):
    img.save(path)
    return path


def test_each_defect_is_flagged(tmp_path):
    folder = tmp_path / "p"
    write_clean(folder, 4)
    src = scene(99)
    src.filter(ImageFilter.GaussianBlur(6)).save(folder / "blurry.jpg", quality=95)
    scene(98).resize((180, 180)).save(folder / "small.png")
    scene(97).resize((400, 400)).save(folder / "upscaled.png")
    buf = io.BytesIO()
    Image.open(folder / "photo_01.jpg").save(buf, "JPEG", quality=40)
    (folder / "photo_01_copy.jpg").write_bytes(buf.getvalue())
    exif = Image.Exif()
    exif[0x0112] = 6
    scene(96, (640, 480)).save(folder / "rotated.jpg", exif=exif)
    rgba = scene(95).convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 255).crop((0, 0, *rgba.size)))
    ImageDraw.Draw(rgba).rectangle((0, 0, 640, 100), fill=(0, 0, 0, 0))
    rgba.save(folder / "cutout.png")
    scene(94).convert("L").save(folder / "gray.jpg")
    scene(93, (1500, 500)).save(folder / "panorama.jpg")
    (folder / "broken.jpg").write_bytes((folder / "photo_00.jpg").read_bytes()[:300])

    report = check_photos(folder, progress=False)
    expect = {"blurry.jpg": "blurry", "small.png": "too_small", "upscaled.png": "upscaled",
              "photo_01_copy.jpg": "duplicate", "rotated.jpg": "exif_rotation",
              "cutout.png": "transparency", "gray.jpg": "grayscale", "panorama.jpg": "aspect",
              "broken.jpg": "unreadable"}
    for name, kind in expect.items():
        assert kind in flagged(report, name), (name, report.text())
    for i in (0, 2, 3):  # the clean ones stay clean
        assert flagged(report, f"photo_{i:02d}.jpg") == set(), report.text()
    assert flagged(report, "photo_01.jpg") == set()  # the original is not the duplicate
    assert not report.ok
    text = report.text()
    assert "near-duplicate of photo_01.jpg" in text and "2.8×" in text  # value and fix named
    assert "centre crop keeps only 33%" in text

    grid = report.grid(tmp_path / "grid.png")
    assert (tmp_path / "grid.png").exists() and grid.width > 5 * 160
    # The broken photo's tile is framed in the problem colour, a clean one in green.
    arr = np.asarray(grid)
    assert tuple(arr[1, 1]) in {(220, 40, 40), (40, 170, 60), (235, 150, 20), (60, 120, 220)}

    out = fix_photos(report, tmp_path / "fixed", crops={"panorama.jpg": -1.0})
    names = {p.name for p in out}
    assert "broken.png" not in names and "photo_01_copy.png" not in names
    assert Image.open(tmp_path / "fixed" / "rotated.png").size == (480, 640)  # upright
    assert Image.open(tmp_path / "fixed" / "cutout.png").mode == "RGB"
    assert Image.open(tmp_path / "fixed" / "cutout.png").getpixel((5, 5)) == (255, 255, 255)
    pano = Image.open(tmp_path / "fixed" / "panorama.png")
    assert pano.size == (500, 500)  # the left square, as asked
    left = scene(93, (1500, 500)).crop((0, 0, 500, 500))
    assert np.abs(np.asarray(pano, np.int16) - np.asarray(left, np.int16)).mean() < 4
    again = check_photos(tmp_path / "fixed", progress=False)
    assert not {"exif_rotation", "transparency", "aspect", "unreadable"} & again.kinds()


def test_a_blurry_verdict_close_to_the_line_asks_to_look_first(tmp_path, monkeypatch):
    """Near the threshold sharp dark or smooth photos have measured too: the fix says to look
    at the photo before leaving it out; a plainly blurred or plainly shaken one is not hedged."""
    import dreamkit.inputs.doctor as doctor
    scene(7).filter(ImageFilter.GaussianBlur(2)).save(tmp_path / "soft.png")
    blur = doctor._check_one(tmp_path / "soft.png", 512, True).blur
    for line, hedged in ((blur - 0.02, True), (blur - doctor.NEAR_LINE - 0.02, False)):
        monkeypatch.setattr(doctor, "MAX_BLUR", line)
        check = doctor._check_one(tmp_path / "soft.png", 512, True)
        fix = next(f.fix for f in check.flags if f.kind == "blurry")
        assert ("close to the line" in fix and "look at it at 100 %" in fix) == hedged, fix
        assert "the model learns the blur too" in fix
    # close to the line, but the camera-shake streak says so too: two measures agree
    monkeypatch.setattr(doctor, "MAX_BLUR", blur - 0.02)
    monkeypatch.setattr(doctor, "MAX_SHAKE", 0.0)
    check = doctor._check_one(tmp_path / "soft.png", 512, True)
    assert "close to the line" not in next(f.fix for f in check.flags if f.kind == "blurry")


def test_photo_counts(tmp_path):
    write_clean(tmp_path / "two", 2)
    assert "too_few" in check_photos(tmp_path / "two", progress=False).kinds()
    write_clean(tmp_path / "many", 22)
    report = check_photos(tmp_path / "many", progress=False)
    assert "too_many" in report.kinds() and report.ok  # a warning, not a problem


def test_crop_box_slides_along_the_long_side():
    assert crop_box((300, 100)) == (100, 0, 200, 100)
    assert crop_box((300, 100), -1) == (0, 0, 100, 100)
    assert crop_box((100, 300), 1) == (0, 200, 100, 300)


def test_fix_refuses_to_overwrite_originals(tmp_path):
    from dreamkit.core.errors import ConfigError
    write_clean(tmp_path / "p", 3)
    report = check_photos(tmp_path / "p", progress=False)
    with pytest.raises(ConfigError, match="is the photo folder .*your inputs stay as they were"):
        fix_photos(report, tmp_path / "p")


def test_cli_check_data(tmp_path):
    folder = tmp_path / "p"
    write_clean(folder, 4)
    scene(99).filter(ImageFilter.GaussianBlur(6)).save(folder / "blurry.jpg")
    (folder / "broken.jpg").write_text("<html>")
    (folder / "IMG_7.HEIC").write_bytes(b"ftypheic")
    run = subprocess.run([sys.executable, "-m", "dreamkit", "check-data", str(folder),
                          "--grid", str(tmp_path / "g.png"), "--fix", str(tmp_path / "fixed")],
                         capture_output=True, text=True)
    assert run.returncode == 1, run.stderr  # problems found
    assert "blurry.jpg" in run.stdout and "problem" in run.stdout
    broken = next(line for line in run.stdout.splitlines() if "broken.jpg:" in line)
    assert broken.count("re-export it as JPEG or PNG") == 1, broken  # its fix said once
    assert "  skipped  left out 1 HEIC photo(s), a format dreamkit does not read (IMG_7.HEIC): " \
        "convert them to JPEG or PNG" in run.stdout, run.stdout
    assert (tmp_path / "g.png").exists()
    assert len(list((tmp_path / "fixed").glob("*.png"))) == 5
    write_clean(tmp_path / "ok", 4)
    run = subprocess.run([sys.executable, "-m", "dreamkit", "check-data", str(tmp_path / "ok")],
                         capture_output=True, text=True)
    assert run.returncode == 0 and "0 problem(s)" in run.stdout


def _on_plain_background(img: Image.Image, seed: int, cover: float = 0.2) -> Image.Image:
    """A product shot: the photo shrunk to `cover` of the side, on a plain white canvas."""
    rng = random.Random(seed)
    k = int(1024 * cover)
    canvas = Image.new("RGB", (1024, 1024), (250, 250, 250))
    canvas.paste(img.resize((k, k)), (rng.randrange(1024 - k), rng.randrange(1024 - k)))
    return canvas


def test_of_two_near_duplicates_the_sharp_one_is_kept(tmp_path):
    """A blurred copy named before its sharp original: the copy is the duplicate to leave
    out, so --fix keeps the sharp photo."""
    folder = tmp_path / "p"
    write_clean(folder, 3, start=10)
    scene(1).save(folder / "b_sharp.jpg", quality=90)
    scene(1).filter(ImageFilter.GaussianBlur(5)).save(folder / "a_blurred.jpg", quality=90)
    report = check_photos(folder, progress=False)
    assert flagged(report, "a_blurred.jpg") == {"blurry", "duplicate"}, report.text()
    assert flagged(report, "b_sharp.jpg") == set(), report.text()
    assert "near-duplicate of b_sharp.jpg" in report.text() and "the one with problems" in \
        report.text()
    kept = {p.name for p in fix_photos(report, tmp_path / "fixed")}
    assert "b_sharp.png" in kept and "a_blurred.png" not in kept
    scene(2).resize((400, 400)).save(folder / "0_small.jpg", quality=95)
    scene(2).save(folder / "z_large.jpg", quality=95)
    report = check_photos(folder, progress=False)
    assert "duplicate" in flagged(report, "0_small.jpg") and "smaller" in report.text()
    assert "duplicate" not in flagged(report, "z_large.jpg")


def test_photos_on_a_plain_background_are_not_duplicates_but_copies_are(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(5):  # five distinct scenes, each 4% of a white canvas
        _on_plain_background(scene(i), seed=i).save(folder / f"{i}.jpg", quality=95)
    report = check_photos(folder, progress=False)
    assert not any(f.kind == "duplicate" for _, f in report.all_flags()), report.text()
    buf = io.BytesIO()
    Image.open(folder / "2.jpg").save(buf, "JPEG", quality=30)
    (folder / "9.jpg").write_bytes(buf.getvalue())  # the same shot, re-compressed
    assert "duplicate" in flagged(check_photos(folder, progress=False), "9.jpg")


def test_fix_says_when_fewer_photos_than_needed_remain(tmp_path):
    folder = tmp_path / "p"
    write_clean(folder, 2)
    shutil.copy2(folder / "photo_00.jpg", folder / "photo_99.jpg")  # a duplicate: left out
    run = subprocess.run([sys.executable, "-m", "dreamkit", "check-data", str(folder),
                          "--fix", str(tmp_path / "fixed")], capture_output=True, text=True)
    assert run.returncode == 1
    assert "2 upright RGB copies" in run.stdout
    assert "holds 2 photo(s), fewer than the 3 DreamBooth needs" in run.stdout


def test_degraded_copies_of_real_photos_are_caught(shared_data, tmp_path):
    """A sample of benchmarks/doctor_recall.py (which runs all 25 photos): the dog's photos with
    one replaced by a degraded copy, at resolution 512."""
    photos = sorted((shared_data / "dog").glob("*.jpg"))
    victim = Image.open(photos[0]).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    cutout = victim.convert("RGBA")
    cutout.putalpha(Image.new("L", victim.size, 0).point(lambda _: 0))
    cutout.paste(victim.crop((100, 100, 400, 400)), (100, 100))
    cases = {"blurry": lambda p: victim.filter(ImageFilter.GaussianBlur(4)).save(p),
             "duplicate": lambda p: Image.open(photos[1]).save(p, quality=30),
             "too_small": lambda p: victim.resize((200, 150)).save(p),
             "grayscale": lambda p: victim.convert("L").save(p),
             "transparency": lambda p: cutout.save(p.with_suffix(".png")),
             "exif_rotation": lambda p: victim.transpose(Image.Transpose.ROTATE_90)
             .save(p, exif=exif)}
    for kind, write in cases.items():
        folder = tmp_path / kind
        folder.mkdir()
        for p in photos[1:]:
            (folder / p.name).write_bytes(p.read_bytes())
        write(folder / "zz.jpg")
        report = check_photos(folder, progress=False)
        name = "zz.png" if kind == "transparency" else "zz.jpg"
        assert kind in flagged(report, name), (kind, report.text())
        others = [f for path, f in report.all_flags() if path is None or path.stem != "zz"]
        assert not [f for f in others if f.severity != "note"], (kind, report.text())


def test_a_jpegs_quality_is_read_and_its_block_edges_smoothed(tmp_path):
    """The doctor measures blur on a JPEG saved below quality 90 with the steps between its
    8×8 blocks smoothed where they stand alone; an outline across a block edge is kept."""
    from dreamkit.inputs.photo_measures import deblocked, jpeg_quality

    photo = scene(3)
    for quality in (35, 60, 75, 90, 95):
        photo.save(tmp_path / f"q{quality}.jpg", quality=quality)
        with Image.open(tmp_path / f"q{quality}.jpg") as saved:
            assert abs(jpeg_quality(saved) - quality) < 1, quality
    photo.save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as saved:
        assert jpeg_quality(saved) is None

    # flat blocks of 8 columns a few levels apart (the quantiser's steps), then an outline
    # of 100 levels that crosses a block edge, with a slope on either side of it
    row = np.repeat([100.0, 106, 100, 109, 103, 100, 240, 240], 8)
    row[46:50] = [120, 160, 200, 240]
    a = np.tile(row, (24, 1)).astype(np.uint8)
    smooth = np.asarray(deblocked(Image.fromarray(a).convert("RGB")))
    steps = np.abs(np.diff(smooth[10], axis=0))
    assert np.abs(np.diff(a[10].astype(float)))[:41].max() == 9
    assert steps[:41].max() <= 3.0001, steps[:41]  # 3-9 level steps spread over three pixels
    assert np.allclose(smooth[10, 44:52], a[10, 44:52]), smooth[10, 44:52]  # the outline kept
