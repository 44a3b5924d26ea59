"""The widget panel: bad values show the one-line message next to the control."""

import pytest

from dreamkit import TrainConfig
from dreamkit.core.errors import ConfigError, DreamkitError
from dreamkit.ui.widgets import ConfigPanel


def _refused(panel, field):
    """The ConfigError `panel.config` raises while a refused value is shown."""
    try:
        panel.config
    except ConfigError as e:
        assert e.field == field and "The panel shows this refused value" in str(e), str(e)
        return str(e)
    raise AssertionError(f"panel.config gave a config while {field} is refused")


def test_a_refused_value_keeps_its_message_until_fixed_and_is_never_used():
    panel = ConfigPanel(TrainConfig(class_noun="dog"))
    panel.set("identifier", "my dog")
    assert panel.message("identifier") == "identifier='my dog': use one rare word without " \
                                          "spaces, e.g. 'zshq' (`dreamkit check-token` " \
                                          "suggests more)"
    _refused(panel, "identifier")  # never the old 'zshq' behind a box that says 'my dog'
    panel.set("max_train_steps", 300)  # another field changes: the message stays
    assert panel.message("identifier").startswith("identifier='my dog'")
    assert panel.message("max_train_steps") == ""
    panel.set("prior_loss_weight", -0.5)  # a second refused value: its own message
    assert panel.message("prior_loss_weight").startswith("prior_loss_weight=-0.5")
    assert panel.message("identifier").startswith("identifier='my dog'")
    panel.set("identifier", "zwx")  # fixed: its message goes, the other stays
    assert panel.message("identifier") == ""
    assert "prior_loss_weight=-0.5" in _refused(panel, "prior_loss_weight")
    panel.set("prior_loss_weight", 1.0)  # put back: greyed, with why (prior is off)
    assert panel.message("prior_loss_weight").startswith("used only with prior preservation")
    assert panel.config.identifier == "zwx" and panel.config.max_train_steps == 300
    panel.set("resolution", 100)
    assert "multiple of 8" in panel.message("resolution")
    panel.set("learning_rate", -1.0)
    assert panel.message("learning_rate").startswith("learning_rate=-1.0: must be a finite")
    assert "multiple of 8" in panel.message("resolution")


def test_prior_switch_and_weight_follow_the_configs_one_rule():
    panel = ConfigPanel(TrainConfig(class_noun="dog", with_prior_preservation=True))
    panel.set("prior_loss_weight", 0.0)  # on with weight 0: refused while shown
    assert "is 0 while with_prior_preservation is on" in panel.message("prior_loss_weight")
    _refused(panel, "prior_loss_weight")
    panel.set("prior_loss_weight", 0.5)
    assert panel.config.prior_loss_weight == 0.5 and panel.message("prior_loss_weight") == ""
    panel.set("with_prior_preservation", False)  # off with 0.5 shown: TrainConfig refuses,
    assert "has no effect while with_prior_preservation is off" in \
        panel.message("prior_loss_weight")  # as Python, the CLI and the form do
    _refused(panel, "prior_loss_weight")
    assert not panel.controls["prior_loss_weight"].disabled  # so it can be put back
    panel.set("prior_loss_weight", 1.0)  # put back: valid, greyed, and the note says why
    assert not panel.config.with_prior_preservation and panel.config.prior_loss_weight == 1.0
    assert panel.controls["prior_loss_weight"].disabled
    assert "used only with prior preservation" in panel.message("prior_loss_weight")
    panel.set("prior_loss_weight", 0.3)  # a weight without the switch: the same error as Python
    assert "has no effect while with_prior_preservation is off" in \
        panel.message("prior_loss_weight")
    _refused(panel, "prior_loss_weight")
    panel.set("with_prior_preservation", True)  # now the shown 0.3 is valid, and used
    assert not panel.controls["prior_loss_weight"].disabled
    assert panel.message("prior_loss_weight") == "" and panel.config.prior_loss_weight == 0.3


def test_the_token_note_stays_while_other_fields_change():
    from dreamkit.models.tokens import sd_vocabulary_tokenizer
    panel = ConfigPanel(TrainConfig(class_noun="dog"), tokenizer=sd_vocabulary_tokenizer())
    panel.set("identifier", "sks")
    note = panel.message("identifier")
    assert "rifle" in note
    panel.set("max_train_steps", 123)
    panel.set("resolution", 100)  # even beside a refused value elsewhere
    assert panel.message("identifier") == note


def test_the_button_shows_errors_in_the_panel(tmp_path):
    from dreamkit import train
    panel = ConfigPanel(TrainConfig(class_noun="dog", instance_dir=str(tmp_path / "none")))
    click = panel.run(lambda cfg: train(cfg, callbacks=[]))
    click()
    assert "instance_dir=" in panel.output.value and "does not exist" in panel.output.value


def test_identifier_is_checked_with_the_models_tokenizer():
    from transformers import CLIPTokenizer

    from dreamkit.models.tokens import sd_vocabulary_tokenizer
    from dreamkit.toy import base_model_dir
    sd = ConfigPanel(TrainConfig(class_noun="dog"), tokenizer=sd_vocabulary_tokenizer())
    assert sd.message("identifier") == ""  # the default passes on Stable Diffusion's vocabulary
    sd.set("identifier", "sks")
    assert "rifle" in sd.message("identifier")
    tok = CLIPTokenizer.from_pretrained(str(base_model_dir()), subfolder="tokenizer")
    panel = ConfigPanel(TrainConfig(class_noun="toy"), tokenizer=tok)
    panel.set("identifier", "qwzxq")
    assert "splits into" in panel.message("identifier") and "hwq" in panel.message("identifier")
    assert panel.config.identifier == "qwzxq"  # a warning, not a refusal
    panel.set("identifier", "zwx")
    assert panel.message("identifier") == ""


def test_subjects_added_in_the_panel_reach_the_config():
    panel = ConfigPanel(TrainConfig(class_noun="dog"))
    rex = panel.add_concept("photos/rex", "zwx")
    tom = panel.add_concept("photos/tom", "hwq", "cat")
    assert panel.config.concepts == [
        {"instance_dir": "photos/rex", "identifier": "zwx", "class_noun": "dog"},
        {"instance_dir": "photos/tom", "identifier": "hwq", "class_noun": "cat"}]
    tom["identifier"].value = "zwx"
    tom["class_noun"].value = "dog"  # the same identifier and class twice: refused, shown
    assert "already uses it" in panel.concepts_message.value
    with pytest.raises(DreamkitError, match="already uses it"):  # never the old list
        panel.config
    tom["identifier"].value = "pfj"
    assert panel.concepts_message.value == "" and panel.config.concepts[1]["identifier"] == "pfj"
    rex["_remove"]()
    assert [c["identifier"] for c in panel.config.concepts] == ["pfj"]
    assert len(panel.concepts_box.children) == 1


def test_empty_prompts_show_the_prompt_they_stand_for():
    panel = ConfigPanel(TrainConfig(class_noun="dog"))
    assert panel.controls["instance_prompt"].placeholder == "a photo of zshq dog"
    assert panel.controls["class_prompt"].placeholder == "a photo of dog"
    panel.set("identifier", "zwx")
    panel.set("class_noun", "cat")
    assert panel.controls["instance_prompt"].placeholder == "a photo of zwx cat"
    panel.set("instance_prompt", "a {token} {class} on a sofa")
    assert panel.config.resolved_instance_prompt == "a zwx cat on a sofa"
    assert panel.button.layout.display == "none"  # no Run button until it has a job
    panel.run(lambda cfg: None)
    assert panel.button.layout.display is None


def test_back_to_the_defaults_estimate_templates_and_messages_for_the_button(tmp_path):
    start = TrainConfig(instance_dir=str(tmp_path), class_noun="toy", max_train_steps=500,
                        with_prior_preservation=True)
    panel = ConfigPanel(start, fields=("identifier", "class_prompt", "max_train_steps",
                                       "with_prior_preservation", "prior_loss_weight"),
                        seconds_per_step=0.08)
    # the time as you type
    assert panel.message("max_train_steps") == "training takes about 40 s here (0.080 s a step)"
    panel.set("max_train_steps", 3000)
    assert "about 4 min" in panel.message("max_train_steps")
    panel.set("max_train_steps", 10**9)  # a typo: refused with the bound, not trained for days
    assert "more than 1,000,000 steps" in panel.message("max_train_steps")
    # a template checked as you type
    panel.set("class_prompt", "a photo of a {foo}")
    assert "'{foo}' is not a template field" in panel.message("class_prompt")
    # pressing the button with refused values: worded for the button, not for a cell
    got = []
    panel.run(got.append, description="Train")
    panel.button.click()
    assert got == [] and "press Train again" in panel.output.value
    assert "run this cell again" not in panel.output.value
    panel.set("with_prior_preservation", False)
    assert panel.output.value == ""  # the old message goes once a value changes
    assert panel.controls["prior_loss_weight"].disabled
    # back to the defaults: every control, its messages, the config
    panel.reset_button.click()
    assert {n: c.value for n, c in panel.controls.items()} == {
        "identifier": start.identifier, "class_prompt": "", "max_train_steps": 500,
        "with_prior_preservation": True, "prior_loss_weight": start.prior_loss_weight}
    assert panel.errors == {} and panel.message("class_prompt") == ""
    assert not panel.controls["prior_loss_weight"].disabled
    assert panel.config == start
    panel.button.click()
    assert got == [start]


def test_the_identifier_warning_keeps_its_sentences_apart():
    from dreamkit.models.loading import load_tokenizer
    from dreamkit.toy import base_model_dir

    panel = ConfigPanel(TrainConfig(class_noun="toy"), fields=("identifier",),
                        tokenizer=load_tokenizer(str(base_model_dir())))
    panel.set("identifier", "red")
    first, second = panel.message("identifier").split("\n")
    assert first.endswith("everyone's red") and second.startswith("rare single tokens")
    assert "<br>" in panel.messages["identifier"].value
