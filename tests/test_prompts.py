"""Prompt templates and per-photo caption files."""

import pytest

from dreamkit import ConfigError, TrainConfig
from dreamkit.core.prompts import fill_template, photo_captions
from dreamkit.inputs.photos import find_images


def test_templates_fill_token_and_class():
    assert fill_template("a {token} {class} on the beach", "zwx", "dog") == \
        "a zwx dog on the beach"
    cfg = TrainConfig(instance_prompt="portrait of {token} {class}", class_noun="person",
                      identifier="ohwx", class_prompt="portrait of a {class}")
    assert cfg.resolved_instance_prompt == "portrait of ohwx person"
    assert cfg.resolved_class_prompt == "portrait of a person"


@pytest.mark.parametrize("template, match", [
    ("a {tokn} dog", r"instance_prompt='a \{tokn\} dog'.*'\{tokn\}' is not a template field"),
    ("a {token} {class}", r"class_noun=''.*uses \{class\}"),
])
def test_bad_templates_name_the_setting(template, match, tmp_path):
    # an unknown field is refused as the config is made (the panel shows it as you type);
    # {class} without a class noun once the config must be complete
    with pytest.raises(ConfigError, match=match):
        TrainConfig(instance_prompt=template, instance_dir=str(tmp_path)).check_ready()


def test_caption_files_override_the_shared_prompt(photos):
    images = find_images(photos).images
    images[0].with_suffix(".txt").write_text("a photo of {token} {class}\non the beach\n")
    images[1].with_suffix(".txt").write_text("   \n")  # empty: falls back
    caps = photo_captions(images, "a photo of sks toy", "sks", "toy")
    assert caps[0] == "a photo of sks toy on the beach"
    assert caps[1:] == ["a photo of sks toy"] * (len(images) - 1)
    # A caption file is not reported as a stray non-image file; other text files are.
    (photos / "notes.txt").write_text("hi")
    assert [p.name for p in find_images(photos).skipped] == ["notes.txt"]


def test_caption_file_with_a_bad_field_names_the_file(photos):
    images = find_images(photos).images
    bad = images[0].with_suffix(".txt")
    bad.write_text("a {subject} on the beach")
    with pytest.raises(ConfigError, match=rf"{bad.name}.*'\{{subject\}}' is not a template"):
        photo_captions(images, "x", "sks", "toy")


def test_training_uses_the_captions(tiny_model, photos, tmp_path, capsys):
    from dreamkit import FunctionCallback, train
    find_images(photos).images[0].with_suffix(".txt").write_text("{token} {class} at night")
    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                      class_noun="toy", resolution=32, max_train_steps=1, train_batch_size=4,
                      output_dir=str(tmp_path / "run"), sample_steps=1, num_sample_images=1)
    said = []  # the loop talks through callbacks; it prints nothing itself
    train(cfg, callbacks=[FunctionCallback(on_message=said.append)])
    assert "captions: 1 of 4 photos have their own (.txt)" in said
    assert "instance_dir: 4 image(s)" in said
    assert capsys.readouterr().out == ""
