"""The classroom's controls drive the runs: what the panel shows is what trains, and a second
run lands beside the first in the comparison (dreamkit/ui/classroom.py).

Here `run_demo` is replaced by a recorder, so these tests check the contract (panel -> config
-> run, runs -> chart and table) in a second; the real thing, two trainings driven the same
way, runs in tests/test_toy_demo.py (the classroom notebook from an installed wheel).
"""

import pytest

import dreamkit.ui.classroom as classroom
from dreamkit.core.errors import DreamkitError
from dreamkit.ui.classroom import CLASSROOM_FIELDS, Classroom

pytest.importorskip("ipywidgets")


@pytest.fixture
def room(tmp_path, monkeypatch):
    received = []

    def run_demo(out, config, overwrite, callbacks):
        received.append(config)
        n = len(received)
        measures = {"subject_fidelity": 0.1 * n, "prompt_fidelity": 0.9, "class_drift": 0.05 * n,
                    "class_drift_mean": 0.05 * n, "class_drift_worst": 0.25 * n,
                    "class_drift_worst_prompt": f"a photo of a toy at night {n}",
                    "class_diversity": 0.5}
        grid = tmp_path / f"grid{n}.png"
        from PIL import Image
        Image.new("RGB", (8, 8)).save(grid)
        return {"before": {k: 0.0 for k in measures}, "after": measures, "grid": str(grid),
                "out": str(out)}

    monkeypatch.setattr(classroom, "run_demo", run_demo)
    r = Classroom(tmp_path / "room", steps=8, seed=3, num_class_images=4)
    r.received = received
    return r


def test_the_panel_has_the_classroom_controls_and_a_train_button(room):
    assert list(room.panel.controls) == list(CLASSROOM_FIELDS)
    assert room.panel.button.description == "Train"
    assert room.panel.button.layout.display is None  # shown


def test_each_run_trains_with_exactly_the_values_shown(room):
    first = room.train()  # the values shown, untouched
    second = room.train(with_prior_preservation=False, identifier="qxv", max_train_steps=6,
                        seed=5, train_text_encoder=False, class_prompt="a photo of a red toy")
    a, b = room.received
    assert (a.with_prior_preservation, a.max_train_steps, a.seed, a.identifier,
            a.train_text_encoder) == (True, 8, 3, "sks", True)
    assert (b.with_prior_preservation, b.max_train_steps, b.seed, b.identifier,
            b.train_text_encoder, b.class_prompt) == (False, 6, 5, "qxv", False,
                                                     "a photo of a red toy")
    assert a.num_class_images == b.num_class_images == 4  # the classroom's own settings stay
    # the panel shows what the second run used
    assert room.panel.controls["with_prior_preservation"].value is False
    assert room.panel.controls["identifier"].value == "qxv"
    assert [r["label"] for r in room.runs] == [first["label"], second["label"]]


def test_the_button_runs_the_panel_as_it_is(room):
    room.panel.set("prior_loss_weight", 0.3)
    room.panel.set("max_train_steps", 7)
    room.panel.button.click()
    assert len(room.received) == 1
    assert (room.received[0].prior_loss_weight, room.received[0].max_train_steps) == (0.3, 7)
    assert room.panel.output.value == ""  # no error shown


def test_runs_land_side_by_side_in_chart_and_table(room):
    room.train()
    room.train(with_prior_preservation=False)
    data = room.chart_data()
    assert list(data) == ["base model", "run 1", "run 2"]
    assert data["run 2"]["class_drift_mean"] == pytest.approx(0.1)
    assert data["run 2"]["class_drift_worst"] == pytest.approx(0.5)
    table = room.table()
    assert "run 1: prior 1, text encoder on, 8 steps, seed 3, 'sks'" in table
    assert "run 2: no prior, text encoder on, 8 steps, seed 3, 'sks'" in table
    assert table.count("<tr>") == 3 and "<td>0.20</td>" in table  # header + a row per run
    assert "worst class prompt" in table and "a photo of a toy at night 2" in table
    from matplotlib.figure import Figure
    assert isinstance(classroom.compare_runs(data), Figure)
    # and under the panel: the chart as a picture, the same table
    assert room.chart.value[:8] == b"\x89PNG\r\n\x1a\n" and room.table_view.value == table


def test_a_rejected_value_stops_the_run_with_its_message(room):
    with pytest.raises(DreamkitError, match="prior_loss_weight"):
        room.train(prior_loss_weight=-0.5)
    assert room.received == [] and room.runs == []
    room.panel.set("identifier", "red")  # the toy model's tokenizer checks it as you type
    assert "is a common word" in room.panel.message("identifier")
    assert "qxv" in room.panel.message("identifier")  # with rare tokens to try instead
