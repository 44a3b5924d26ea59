"""The widget panel: bad values show the one-line message next to the control."""

from dreamkit import TrainConfig
from dreamkit.widgets import ConfigPanel


def test_bad_values_show_a_message_and_keep_the_last_good_config():
    panel = ConfigPanel(TrainConfig(class_noun="dog"))
    panel.set("identifier", "my dog")
    assert panel.message("identifier") == "identifier='my dog': use one rare word without " \
                                          "spaces, e.g. 'sks'"
    assert panel.config.identifier == "sks"  # the last good value stays
    panel.set("identifier", "zwx")
    assert panel.message("identifier") == "" and panel.config.identifier == "zwx"
    panel.set("resolution", 100)
    assert "multiple of 8" in panel.message("resolution")
    panel.set("learning_rate", -1.0)
    assert panel.message("learning_rate").startswith("learning_rate=-1.0: must be a number")


def test_prior_weight_zero_turns_prior_preservation_off():
    panel = ConfigPanel(TrainConfig(class_noun="dog", with_prior_preservation=True))
    panel.set("prior_loss_weight", 0.0)
    assert panel.config.with_prior_preservation is False
    panel.set("prior_loss_weight", 0.5)
    assert panel.config.with_prior_preservation and panel.config.prior_loss_weight == 0.5
    panel.set("prior_loss_weight", -1.0)
    assert "0 or more" in panel.message("prior_loss_weight")


def test_the_button_shows_errors_in_the_panel(tmp_path):
    from dreamkit import train
    panel = ConfigPanel(TrainConfig(class_noun="dog", instance_dir=str(tmp_path / "none")))
    click = panel.run(lambda cfg: train(cfg, callbacks=[]))
    click()
    assert "instance_dir=" in panel.output.value and "does not exist" in panel.output.value
