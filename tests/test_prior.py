import numpy as np
import pytest
from PIL import Image

from dreamkit.inputs.prior import (
    class_image_name,
    generate_class_images,
    missing_class_indices,
)
from dreamkit.models.loading import load_pipeline


@pytest.fixture(scope="module")
def pipe(tiny_model):
    return load_pipeline(str(tiny_model))


def _gen(pipe, folder, n, batch_size=2):
    return generate_class_images(pipe, "a photo of toy", folder, n, seed=3, batch_size=batch_size,
                                 num_inference_steps=3, resolution=32, progress=False)


def test_generates_requested_count_at_resolution(pipe, tmp_path):
    paths = _gen(pipe, tmp_path / "cls", 3)
    assert [p.name for p in paths] == [class_image_name(i) for i in range(3)]
    assert all(Image.open(p).size == (32, 32) for p in paths)
    assert not list((tmp_path / "cls").glob(".*tmp"))


def test_resume_after_interruption_keeps_files_and_matches_a_fresh_run(pipe, tmp_path):
    folder = tmp_path / "cls"
    _gen(pipe, folder, 2)  # "interrupted" after 2 of 5
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    paths = _gen(pipe, folder, 5, batch_size=3)
    assert len(paths) == 5
    for name, mtime in before.items():
        assert (folder / name).stat().st_mtime_ns == mtime, f"{name} was regenerated"
    # Image i depends only on seed + i, not on batching or restarts (up to the rounding of
    # batched float kernels: at most a couple of levels out of 255).
    fresh = _gen(pipe, tmp_path / "fresh", 5, batch_size=5)
    other_seed = np.asarray(Image.open(fresh[1]), dtype=int)
    for a, b in zip(paths, fresh):
        x, y = np.asarray(Image.open(a), dtype=int), np.asarray(Image.open(b), dtype=int)
        assert np.abs(x - y).max() <= 3, a.name
    assert np.abs(np.asarray(Image.open(fresh[0]), dtype=int) - other_seed).mean() > 10


def test_user_images_count_and_damaged_ones_are_redone(pipe, tmp_path):
    folder = tmp_path / "cls"
    folder.mkdir()
    Image.new("RGB", (40, 40), (9, 9, 9)).save(folder / "mine.jpg")
    (folder / class_image_name(0)).write_bytes(b"half a png")  # a crash mid-write
    assert missing_class_indices(folder, 3) == [0, 1]
    paths = _gen(pipe, folder, 3)
    assert sorted(p.name for p in paths) == [class_image_name(0), class_image_name(1), "mine.jpg"]
    Image.open(folder / class_image_name(0)).load()  # now a real image
