import json

import pytest

from dreamkit import ConfigError, TrainConfig
from dreamkit.core.config import knob_help


def test_defaults_compose_prompts():
    c = TrainConfig(identifier="zwx", class_noun="backpack")
    assert c.resolved_instance_prompt == "a photo of zwx backpack"
    assert c.resolved_class_prompt == "a photo of backpack"
    assert c.resolved_class_dir.endswith("class_images")
    assert c.resolved_sample_prompts[0] == "a photo of zwx backpack"


@pytest.mark.parametrize("changes, field, words", [
    ({"resolution": 500}, "resolution", "multiple of 8"),
    ({"resolution": 500}, "resolution", "try 496 or 504"),
    ({"max_train_steps": 0}, "max_train_steps", "at least 1"),
    ({"max_train_steps": -5}, "max_train_steps", "at least 1"),
    ({"learning_rate": -1e-5}, "learning_rate", "above 0"),
    ({"prior_loss_weight": -0.5}, "prior_loss_weight", "0 or more"),
    ({"identifier": ""}, "identifier", "rare word"),
    ({"identifier": "s ks"}, "identifier", "without spaces"),
    ({"step_mode": "three_pass"}, "step_mode", "one_pass"),
    ({"mixed_precision": "fp8"}, "mixed_precision", "fp16"),
    ({"lr_scheduler": "wobbly"}, "lr_scheduler", "cosine"),
    ({"num_class_images": 0, "with_prior_preservation": True}, "num_class_images",
     "prior preservation needs class images"),
    ({"pretrained_model_name_or_path": ""}, "pretrained_model_name_or_path", "hub id"),
])
def test_validation_names_field_value_and_fix(changes, field, words):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**changes)
    msg = str(e.value)
    assert e.value.field == field
    assert msg.startswith(f"{field}=")
    assert repr(changes[field]) in msg
    assert words in msg


@pytest.mark.parametrize("changes, field, words", [
    ({}, "instance_dir", "photos of your subject"),
    ({"instance_dir": "p"}, "class_noun", "what the subject is"),
    ({"instance_dir": "p", "instance_prompt": "photo", "with_prior_preservation": True},
     "class_prompt", "prior preservation needs a class prompt"),
])
def test_check_ready_names_what_is_missing(changes, field, words):
    c = TrainConfig(**changes)  # a half-filled config may exist (widgets, CLI defaults)...
    with pytest.raises(ConfigError) as e:
        c.check_ready()  # ...but training refuses it, saying what to fill in
    assert e.value.field == field and words in str(e.value)
    TrainConfig(instance_dir="p", instance_prompt="photo").check_ready()  # diffusers style is fine


def test_no_prior_allows_zero_class_images():
    c = TrainConfig(with_prior_preservation=False, num_class_images=0)
    assert c.num_class_images == 0


def test_json_round_trip(tmp_path):
    c = TrainConfig(identifier="zwx", class_noun="cat", max_train_steps=123, learning_rate=2e-6,
                    sample_prompts=["a photo of zwx cat in the snow"], step_mode="two_pass")
    path = c.save(tmp_path / "run" / "config.json")
    assert json.loads(path.read_text())["max_train_steps"] == 123
    assert TrainConfig.load(path) == c.with_absolute_paths()
    assert not list(tmp_path.rglob("*.tmp"))


def test_saved_config_works_from_another_folder(tmp_path, monkeypatch):
    """config.json holds full paths: `--config run/config.json` works from anywhere."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    c = TrainConfig(instance_dir="photos", output_dir="runs/a", class_noun="cat",
                    concepts=[], class_dir="classes")
    path = c.save(tmp_path / "runs" / "a" / "config.json")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    back = TrainConfig.load(path)
    assert back.instance_dir == str(tmp_path / "photos")
    assert back.output_dir == str(tmp_path / "runs" / "a")
    assert back.class_dir == str(tmp_path / "classes")
    assert back.pretrained_model_name_or_path == c.pretrained_model_name_or_path  # a hub id


def test_load_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        TrainConfig.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.load(bad)
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"max_train_step": 10}))
    with pytest.raises(ConfigError, match="max_train_step=10: is not a TrainConfig setting"):
        TrainConfig.load(typo)


def test_every_knob_has_a_reason():
    import dataclasses
    for f in dataclasses.fields(TrainConfig):
        assert len(knob_help(f.name)) > 10, f.name


def _four_faces(weight: float, capsys, tmp_path) -> list:
    """The prior rule's outcome for (prior off, `weight`) from Python, the CLI, the notebook
    form and the widget panel: the refusal's text, or '' where the value was taken."""
    from dreamkit.core.errors import ConfigError
    from dreamkit.ui.cli import main
    from dreamkit.ui.notebook import notebook_config
    from dreamkit.ui.widgets import ConfigPanel

    out = []
    try:
        TrainConfig(class_noun="dog", prior_loss_weight=weight)
        out.append("")
    except ConfigError as e:
        out.append(str(e))
    main(["plan-memory", "--class_noun", "dog", "--prior_loss_weight", str(weight),
          "--pretrained_model_name_or_path", "no/such-model-here"])  # plans only if taken
    err = capsys.readouterr().err
    out.append(err.split("error: ", 1)[1].strip() if "prior_loss_weight" in err else "")
    form = dict(identifier="zshq", class_noun="dog", steps=10, prior_preservation=False,
                prior_loss_weight=weight, num_class_images=10, learning_rate=1e-5)
    try:
        notebook_config(True, "some/model", tmp_path / "photos", tmp_path / "run", **form)
        out.append("")
    except ConfigError as e:
        out.append(str(e))
    panel = ConfigPanel(TrainConfig(class_noun="dog", with_prior_preservation=True))
    panel.set("prior_loss_weight", weight)
    panel.set("with_prior_preservation", False)
    out.append("" if "prior_loss_weight" not in panel.errors else panel.message("prior_loss_weight"))
    return out


def test_prior_rule_is_one_rule_in_python_cli_form_and_panel(capsys, tmp_path, monkeypatch):
    """TrainConfig holds the rule; the four faces show its verdict, the same for the same
    inputs: a weight other than the default without the switch is refused (it would be
    ignored), the default is taken."""
    import dreamkit.ui.commands as commands
    from dreamkit.core.errors import DreamkitError

    def taken(config, gpu=None):  # the CLI took the value: stop before planning a model
        raise DreamkitError("taken")
    monkeypatch.setattr(commands, "plan", taken)
    refused = [_four_faces(weight, capsys, tmp_path) for weight in (0.5, 1.0)]
    rule = refused[0][0]
    assert rule.startswith("prior_loss_weight=0.5: has no effect while with_prior_preservation")
    assert refused[0] == [rule] * 4, refused[0]
    assert refused[1] == [""] * 4, refused[1]
    with pytest.raises(ConfigError, match="is 0 while with_prior_preservation is on"):
        TrainConfig(with_prior_preservation=True, prior_loss_weight=0)
    on = TrainConfig(with_prior_preservation=True, prior_loss_weight=0.5)
    assert on.prior_preservation and not TrainConfig().prior_preservation
