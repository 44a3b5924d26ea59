"""What the notebooks' cells call: the caption editor, trying a model, the sizes said before
training against a real run's files, and freeing Drive space (dreamkit/ui/notebook.py,
dreamkit/planning/space.py)."""

import pytest
from PIL import Image

from dreamkit import TrainConfig, train
from dreamkit.planning.planner import T4_SETTINGS
from dreamkit.planning.space import free_space, planned_sizes, run_sizes, run_sizes_text
from dreamkit.ui.notebook import caption_editor, notebook_config, try_model

pytest.importorskip("ipywidgets")


def test_captions_typed_under_the_photos_become_their_txt_files(photos):
    editor = caption_editor(photos)
    names = sorted(p.name for p in editor.boxes)
    assert len(names) == 4 and len(editor.children) == 4 + 2  # a row per photo, button, status
    first, second = sorted(editor.boxes)[:2]
    editor.boxes[first].value = "a photo of {token} {class} on a red sofa"
    editor.save()
    assert first.with_suffix(".txt").read_text() == "a photo of {token} {class} on a red sofa\n"
    assert not second.with_suffix(".txt").exists()  # an empty box writes nothing
    assert "1 caption(s) saved" in editor.children[-1].value
    again = caption_editor(photos)  # opened again: the saved caption is in its box
    assert again.boxes[first].value == "a photo of {token} {class} on a red sofa"
    again.boxes[first].value = ""
    again.save()
    assert not first.with_suffix(".txt").exists()  # emptied: the caption is removed


def test_sd15_on_a_t4_fits_free_drive_and_says_so():
    config = notebook_config(True, "stable-diffusion-v1-5/stable-diffusion-v1-5", "photos",
                             "/content/drive/MyDrive/dreambooth/run", identifier="zshq",
                             class_noun="dog", steps=400, prior_preservation=True,
                             prior_loss_weight=1.0, num_class_images=100, learning_rate=5e-6)
    assert {k: getattr(config, k) for k in T4_SETTINGS} == T4_SETTINGS
    sizes = planned_sizes(config)
    assert config.final_dtype == "fp16" and 2.0e9 < sizes.model < 2.3e9  # 1.07 B values x 2
    assert 4.5e9 < sizes.checkpoint < 5.5e9  # fp32 UNet + 8-bit AdamW states
    assert sizes.at_the_end <= 6e9 and sizes.while_running <= 8e9  # the budget
    text = sizes.text()
    assert "the final model ~2.1 GB (fp16)" in text and "checkpoint is removed" in text


def test_planned_sizes_match_a_real_runs_files_and_freeing_them(tiny_model, photos, tmp_path):
    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                      class_noun="toy", with_prior_preservation=True, num_class_images=2,
                      sample_batch_size=2, class_inference_steps=2, resolution=32,
                      max_train_steps=2, learning_rate=1e-3, output_dir=str(tmp_path / "run"),
                      sample_steps=2, num_sample_images=1, checkpointing_steps=2,
                      keep_checkpoints=True)
    train(cfg, callbacks=[])
    planned, found = planned_sizes(cfg), run_sizes(tmp_path / "run")
    weights = sum(f.stat().st_size for f in (tmp_path / "run").glob("*/*.safetensors")
                  if "checkpoints" not in f.parts)
    assert abs(weights - planned.model) <= 0.05 * planned.model, (weights, planned.model)
    assert abs(found["checkpoints"] - planned.checkpoint) <= 0.10 * planned.checkpoint, \
        (found["checkpoints"], planned.checkpoint)
    assert {"model", "checkpoints", "class images", "samples"} <= set(found)
    freed = free_space(tmp_path / "run", checkpoints=True, class_images=True)
    after = run_sizes(tmp_path / "run")
    assert freed == found["checkpoints"] + found["class images"]
    assert "checkpoints" not in after and "class images" not in after
    assert after["model"] == found["model"]  # the model is never touched
    line = run_sizes_text(tmp_path / "run")  # what the notebook prints: biggest part first
    assert line.startswith(f"model {found['model'] / 1e6:.1f} MB") and "checkpoints" not in line
    assert line.endswith(f"({sum(after.values()) / 1e6:.1f} MB in all)")
    assert run_sizes_text(tmp_path / "nowhere").startswith("nothing")


def test_the_sizes_are_counted_once_per_model_and_lora_settings(tiny_model, tmp_path, monkeypatch):
    """Each Run all says the planned sizes: counted on the meta device the first time, then
    read back (here, and in a new kernel from DREAMKIT_CACHE); a setting that changes what is
    trained, or another model, counts again."""
    import dreamkit.core.keep as keep
    import dreamkit.planning.shapes as shapes
    monkeypatch.setenv("DREAMKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(keep, "_MEMO", {})
    built, meta_models = [], shapes.meta_models
    monkeypatch.setattr(shapes, "meta_models", lambda m: built.append(m) or meta_models(m))
    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), use_lora=True, lora_rank=4)
    first = planned_sizes(cfg)
    assert planned_sizes(cfg.replace(max_train_steps=9, learning_rate=1e-3)) == first
    assert len(built) == 1 and list((tmp_path / "cache" / "sizes").glob("*.json"))
    monkeypatch.setattr(keep, "_MEMO", {})  # a new kernel: read back from the file
    assert planned_sizes(cfg) == first and len(built) == 1
    bigger = planned_sizes(cfg.replace(lora_rank=8))
    assert len(built) == 2 and bigger.model > first.model  # counted again: a larger LoRA file
    planned_sizes(cfg.replace(use_lora=False))
    assert len(built) == 3


def test_try_model_saves_what_it_shows_with_its_settings(tiny_model, tmp_path):
    import shutil
    run = tmp_path / "run"
    shutil.copytree(tiny_model, run)
    (run / "history.json").write_text("[]")  # a finished training run's folder ...
    TrainConfig(pretrained_model_name_or_path=str(tiny_model)).save(run / "config.json")
    images, folder = try_model(run, "a photo of sks toy", "blurry", seed=3, steps=2, count=2)
    files = sorted(folder.glob("*.png"))
    assert len(images) == 2 and len(files) == 2 and folder.parent == run / "generated"
    with Image.open(files[0]) as saved:
        assert saved.text["prompt"] == "a photo of sks toy" and saved.text["seed"] == "3"
        assert saved.text["negative_prompt"] == "blurry" and saved.size == images[0].size
