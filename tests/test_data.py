import numpy as np
import pytest
import torch
from PIL import Image

from dreamkit import ImageError
from dreamkit.inputs.loader import collate
from dreamkit.inputs.photos import (
    DreamBoothDataset,
    find_images,
    load_image,
    open_image,
    to_tensor,
)


def _save(path, img, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def test_find_images_any_case_recursive_and_skips(tmp_path):
    _save(tmp_path / "a.JPG", Image.new("RGB", (8, 8)))
    _save(tmp_path / "sub" / "b.webp", Image.new("RGB", (8, 8)))
    _save(tmp_path / "c.Png", Image.new("RGB", (8, 8)))
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / ".DS_Store").write_bytes(b"\0")
    scan = find_images(tmp_path)
    assert [p.name for p in scan.images] == ["a.JPG", "c.Png", "b.webp"]
    assert [p.name for p in scan.skipped] == ["notes.txt"]
    assert "skipped 1 non-image file(s): notes.txt" in scan.summary()


def test_photos_in_formats_not_read_are_named_with_the_fix(tmp_path):
    """An iPhone's HEICs or a camera's raws: named as photos left out, not 'no images'."""
    (tmp_path / "IMG_1.HEIC").write_bytes(b"ftypheic")
    (tmp_path / "DSC_2.NEF").write_bytes(b"raw")
    with pytest.raises(ImageError, match=r"holds no images .*; left out 2 HEIC/raw photo\(s\), "
                       r"formats dreamkit does not read \(DSC_2.NEF, IMG_1.HEIC\): convert them "
                       r"to JPEG or PNG \(an iPhone saves JPEGs with .*Most Compatible\)"):
        find_images(tmp_path)
    _save(tmp_path / "a.jpg", Image.new("RGB", (8, 8)))
    (tmp_path / "notes.txt").write_text("hi")
    summary = find_images(tmp_path).summary()
    assert summary == ("1 image(s); left out 2 HEIC/raw photo(s), formats dreamkit does not read "
                       "(DSC_2.NEF, IMG_1.HEIC): convert them to JPEG or PNG (an iPhone saves "
                       "JPEGs with Settings > Camera > Formats > Most Compatible); skipped 1 "
                       "non-image file(s): notes.txt"), summary


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(ImageError, match=r"instance_dir='.*nope' does not exist"):
        find_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(ImageError, match="holds no images .* put 3-20 photos"):
        find_images(tmp_path / "empty")
    assert find_images(tmp_path / "nope", setting="class_dir", required=False).images == []


def test_exif_rotation_applied(tmp_path):
    # A landscape 40x20 picture, left half red, stored with orientation 6 (rotate 90° CW to view).
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 20, 20))
    exif = Image.Exif()
    exif[274] = 6
    path = _save(tmp_path / "rot.jpg", img, exif=exif.tobytes(), quality=95)
    up = open_image(path)
    assert up.size == (20, 40)  # upright: portrait
    arr = np.asarray(up)
    assert arr[5, 10, 0] > 200 and arr[5, 10, 2] < 60  # red ends up on top after rotation
    assert arr[35, 10, 2] > 200


def test_rgba_flattened_on_white_and_modes(tmp_path):
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))  # fully transparent red
    rgba.paste((0, 255, 0, 255), (0, 0, 8, 16))
    out = np.asarray(open_image(_save(tmp_path / "a.png", rgba)))
    assert out.shape == (16, 16, 3)
    assert tuple(out[0, 12]) == (255, 255, 255)  # transparent -> white, not black
    assert tuple(out[0, 2]) == (0, 255, 0)
    gray = open_image(_save(tmp_path / "g.png", Image.new("L", (10, 10), 77)))
    assert gray.mode == "RGB" and gray.getpixel((3, 3)) == (77, 77, 77)
    pal = Image.new("P", (10, 10))
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.paste(1, (0, 0, 10, 10))
    assert open_image(_save(tmp_path / "p.png", pal)).getpixel((0, 0)) == (10, 20, 30)
    deep = Image.fromarray((np.ones((10, 10)) * 65535).astype(np.uint16))
    assert open_image(_save(tmp_path / "d.png", deep)).getpixel((1, 1)) == (255, 255, 255)
    cmyk = open_image(_save(tmp_path / "c.jpg", Image.new("CMYK", (10, 10), (0, 255, 255, 0))))
    r, g, b = cmyk.getpixel((5, 5))
    assert r > 200 and g < 60 and b < 60


def test_resize_and_centre_crop(tmp_path):
    img = Image.new("RGB", (120, 60), (0, 0, 0))
    img.paste((255, 255, 255), (30, 0, 90, 60))  # white centre square
    out = load_image(_save(tmp_path / "wide.png", img), 32)
    assert out.size == (32, 32)
    assert np.asarray(out).mean() > 250  # the crop kept the white centre only
    squashed = load_image(tmp_path / "wide.png", 32, center_crop=False)
    assert squashed.size == (32, 32) and np.asarray(squashed).mean() < 200
    t = to_tensor(out)
    assert t.shape == (3, 32, 32) and t.min() >= -1 and t.max() <= 1


def test_corrupt_and_truncated_files_are_named(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"definitely not a jpeg")
    with pytest.raises(ImageError, match="broken.jpg: cannot be read as an image"):
        open_image(bad)
    full = _save(tmp_path / "full.jpg", Image.effect_noise((64, 64), 50).convert("RGB"))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[:400])
    with pytest.raises(ImageError, match="cut.jpg"):
        open_image(cut)
    empty = tmp_path / "zero.png"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match="zero.png"):
        open_image(empty)


def test_dataset_pairs_instance_and_class(tmp_path, photos):
    from dreamkit.testing import make_photos
    cls = make_photos(tmp_path / "cls", n=3, size=40, seed=5)
    ds = DreamBoothDataset(find_images(photos).images, "a photo of sks toy", 32, cls,
                           "a photo of toy")
    assert len(ds) == 4
    item = ds[3]
    assert item["instance_pixel_values"].shape == (3, 32, 32)
    assert item["class_prompt"] == "a photo of toy"
    assert torch.equal(item["class_pixel_values"], ds[0]["class_pixel_values"])  # 3 % 3 == 0
    batch = collate([ds[0], ds[1]])
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    assert batch["class_pixel_values"].shape == (2, 3, 32, 32)
    assert batch["prompts"] == ["a photo of sks toy"] * 2


def test_dataset_names_a_broken_photo_before_training(tmp_path, photos):
    (photos / "zz_bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageError, match="zz_bad.png"):
        DreamBoothDataset(find_images(photos).images, "p", 32)


def test_real_photos_load(shared_data):
    for subject in ("dog", "backpack", "teapot", "cat2", "duck_toy"):
        scan = find_images(shared_data / subject)
        assert 4 <= len(scan.images) <= 6, subject
        ds = DreamBoothDataset(scan.images, f"a photo of sks {subject}", 64)
        x = ds[0]["instance_pixel_values"]
        assert x.shape == (3, 64, 64)
        assert -1 <= x.min() < x.max() <= 1 and x.std() > 0.05  # a real picture, not a blank


def test_a_float_tiff_is_scaled_not_black(tmp_path):
    """A 32-bit float image (values 0-1) named .png: PIL's own conversion clips it to black."""
    arr = np.random.default_rng(0).random((40, 40)).astype(np.float32)
    Image.fromarray(arr, "F").save(tmp_path / "scan.png", format="TIFF")
    from dreamkit.inputs.photos import open_image
    img = np.asarray(open_image(tmp_path / "scan.png"), dtype=np.float64)
    assert img.shape == (40, 40, 3)
    assert abs(img.mean() - 255 * arr.mean()) < 2  # scaled, not clipped to 0 or 1
