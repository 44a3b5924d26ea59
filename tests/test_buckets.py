"""Aspect-ratio buckets (aspect_buckets=True): photos at their own shape, one bucket per batch,
class images cropped to their photo's bucket, exact resume, and the doctor's bucket notes."""

import numpy as np
import pytest
import torch
from PIL import Image

from dreamkit import FunctionCallback, TrainConfig, check_photos, train
from dreamkit.inputs.buckets import bucket_sizes, cropped_share, nearest_bucket

SIZES = [(48, 64), (64, 48), (40, 40), (30, 60), (64, 44), (50, 70), (70, 36)]  # (w, h)


@pytest.fixture
def shaped_photos(tmp_path):
    g = np.random.default_rng(0)
    folder = tmp_path / "shaped"
    folder.mkdir()
    for i, (w, h) in enumerate(SIZES):
        Image.fromarray(g.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def _config(tiny_model, photos, out, **kw):
    return TrainConfig(**{"pretrained_model_name_or_path": str(tiny_model),
                          "instance_dir": str(photos), "class_noun": "toy", "resolution": 32,
                          "max_train_steps": 6, "learning_rate": 1e-3, "output_dir": str(out),
                          "sample_steps": 1, "num_sample_images": 1, "checkpointing_steps": 0,
                          "aspect_buckets": True, "train_batch_size": 2, **kw})


def test_buckets_keep_the_pixel_count_and_the_aspect_ratios():
    for resolution, portrait in ((512, (448, 576)), (1024, (896, 1152))):  # kohya's sizes
        sizes = bucket_sizes(resolution)
        assert sizes[0] == (resolution, resolution)
        assert all(w % 64 == 0 and h % 64 == 0 for w, h in sizes)
        assert all(w * h <= resolution ** 2 and w * h > 0.8 * resolution ** 2 for w, h in sizes)
        assert all(0.5 <= w / h <= 2 for w, h in sizes)
        assert portrait in sizes and portrait[::-1] in sizes
    assert nearest_bucket((3000, 4000), bucket_sizes(512)) == (448, 576)  # a phone portrait
    assert nearest_bucket((4000, 3000), bucket_sizes(512)) == (576, 448)


def test_every_batch_is_one_bucket_and_class_images_take_their_photos_bucket(
        tiny_model, shaped_photos, tmp_path):
    from dreamkit.inputs.loader import build_dataset, make_loader
    from dreamkit.inputs.photos import find_images
    cfg = _config(tiny_model, shaped_photos, tmp_path / "run", with_prior_preservation=True,
                  num_class_images=4)
    classes = tmp_path / "classes"
    classes.mkdir()
    for k in range(4):
        Image.new("RGB", (32, 32), (40 * k, 90, 160)).save(classes / f"class_{k:04d}.png")
    scans = [find_images(shaped_photos)]
    ds = build_dataset(cfg, cfg.resolved_concepts, scans,
                       {cfg.resolved_class_dir: sorted(classes.glob("*.png"))})
    buckets = bucket_sizes(32)
    for path, u8, bucket in zip(scans[0].images, ds.instance, ds.instance_buckets):
        with Image.open(path) as img:
            size = img.size
        assert bucket == nearest_bucket(size, buckets)
        assert tuple(u8.shape[1:]) == (bucket[1], bucket[0])  # stored at its bucket: (C, H, W)
        square = 1 - min(size) ** 2 / (size[0] * size[1])  # what the centre crop would cut
        assert cropped_share(size, bucket) <= square + 1e-9  # never more than the square crop
    loader = make_loader(ds, cfg)
    seen = 0
    for epoch in range(2):
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            assert batch["pixel_values"].shape[-2:] == batch["class_pixel_values"].shape[-2:]
            shapes = {tuple(x.shape) for x in batch["pixel_values"]}
            assert len(shapes) == 1  # one bucket per batch
            seen += len(batch["pixel_values"])
    assert seen == 2 * len(ds)


def test_a_bucketed_run_resumes_exactly(tiny_model, shaped_photos, tmp_path):
    from test_checkpoint import _Stop as Stop
    from test_checkpoint import _stop_at as stop_at
    kw = dict(with_prior_preservation=True, num_class_images=3, class_inference_steps=1,
              checkpointing_steps=2, keep_checkpoints=True, random_flip=True, max_train_steps=8)
    whole = train(_config(tiny_model, shaped_photos, tmp_path / "whole", **kw), callbacks=[])
    cfg = _config(tiny_model, shaped_photos, tmp_path / "cut", **kw)
    with pytest.raises(Stop):
        train(cfg, callbacks=[stop_at(5)])  # the newest checkpoint: step 4, mid-epoch
    resumed = train(cfg.replace(resume="auto"), callbacks=[])
    a, b = resumed.unet.state_dict(), whole.unet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]


def test_epochs_count_each_buckets_batches(tiny_model, shaped_photos, tmp_path):
    said = []
    result = train(_config(tiny_model, shaped_photos, tmp_path / "run", num_train_epochs=2,
                           cache_latents=False),
                   callbacks=[FunctionCallback(on_message=said.append)])
    buckets = [nearest_bucket(s, bucket_sizes(32)) for s in SIZES]
    per_epoch = sum(-(-buckets.count(b) // 2) for b in set(buckets))
    assert len(result.history) == 2 * per_epoch
    assert any(f"2 × {per_epoch} steps" in m for m in said), said


def test_the_doctor_says_each_photos_bucket_instead_of_the_crop(shaped_photos, tmp_path):
    square = check_photos(shaped_photos, resolution=32, progress=False)
    bucketed = check_photos(shaped_photos, resolution=32, progress=False, aspect_buckets=True)
    assert "aspect" in square.kinds() and "aspect" not in bucketed.kinds()
    notes = {p.path.name: f.message for p in bucketed.photos for f in p.flags
             if f.kind == "bucket"}
    assert len(notes) == len(SIZES)
    assert "trains at 24×40" in notes["p0.png"] and "trains at 32×32" in notes["p2.png"]
    assert "0% cut off" in notes["p2.png"]
    grid = bucketed.grid(tmp_path / "grid.png")
    assert grid.size[0] > 0 and (tmp_path / "grid.png").is_file()
