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


def test_class_prompt_variants_draw_in_turn_and_train_with_their_own_prompt(pipe, tiny_model,
                                                                           photos, tmp_path):
    """Several class prompts: image i comes from prompt i mod n, its prompt is written beside
    it, and the dataset pairs each class image with that prompt (not the first one)."""
    from dreamkit import TrainConfig
    from dreamkit.core.errors import ConfigError
    from dreamkit.inputs.loader import build_dataset
    from dreamkit.inputs.photos import find_images

    prompts = ["a photo of toy", "a photo of toy on the beach", "a photo of toy at night"]
    paths = generate_class_images(pipe, prompts, tmp_path / "cls", 5, seed=3, batch_size=2,
                                  num_inference_steps=3, resolution=32, progress=False)
    assert [p.with_suffix(".txt").read_text().strip() for p in paths] == \
        [prompts[i % 3] for i in range(5)]
    single = generate_class_images(pipe, "a photo of toy", tmp_path / "one", 2, seed=3,
                                   batch_size=2, num_inference_steps=3, resolution=32,
                                   progress=False)
    # drawn from its prompt: image 0 matches a single-prompt run's image 0, image 1 does not
    assert np.array_equal(np.asarray(Image.open(paths[0])), np.asarray(Image.open(single[0])))
    assert not np.array_equal(np.asarray(Image.open(paths[1])), np.asarray(Image.open(single[1])))

    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                      class_noun="toy", with_prior_preservation=True, num_class_images=5,
                      class_dir=str(tmp_path / "cls"), output_dir=str(tmp_path / "run"),
                      class_prompt_variants=["a photo of {class} on the beach",
                                             "a photo of {class} at night"])
    concept = cfg.resolved_concepts[0]
    assert concept.class_prompts == tuple(prompts)
    scans = [find_images(photos, setting="instance_dir")]
    data = build_dataset(cfg, cfg.resolved_concepts, scans, {str(tmp_path / "cls"): paths})
    assert data.class_prompts == [prompts[i % 3] for i in range(5)]
    with pytest.raises(ConfigError, match="class_prompt_variants"):
        TrainConfig(instance_dir=str(photos), class_prompt_variants=["ok", " "])
    with pytest.raises(ConfigError, match="class_prompt_variants"):
        TrainConfig(instance_dir=str(photos), class_prompt_variants="a photo of a toy")
