"""The Colab notebooks' forms drive what follows, as Colab users use them.

A Colab form field is a line `NAME = value  #@param ...`; when a user changes the field, Colab
rewrites that line, and the notebook keeps it. These tests do the same to the notebook's source,
then run it as Run all does, up to and including the training cell, on the CPU path and on the
GPU path (taken by setting ON_GPU, as a CUDA machine would). `train` (and, on the GPU path, what
would load Stable Diffusion or use CUDA) is replaced by a recorder: nothing is trained here;
tests/test_notebooks.py runs the notebooks whole on the CPU.
"""

import json
import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from test_notebooks import ROOT

RECORDER = '''
import json, dreamkit, dreamkit.models.loading, dreamkit.planning.planner, dreamkit.inputs.prior
from pathlib import Path
from types import SimpleNamespace
def _received(config, *args, **kwargs):
    Path("received.json").write_text(json.dumps(config.to_dict()))
    return SimpleNamespace(step_mode=config.step_mode, model_dir=None, history=[])
dreamkit.train = _received
'''
# On the GPU path nothing may load SD 1.5 or touch CUDA on this CPU machine.
GPU_STUBS = '''
class _Plan:
    step_mode, step_mode_reason = "one_pass", "recorded"
    def line(self):
        return "memory plan: (recorded)"
dreamkit.planning.planner.plan = lambda config, **kw: _Plan()
dreamkit.models.loading.load_pipeline = lambda *a, **k: None
dreamkit.inputs.prior.generate_class_images = lambda *a, **k: sorted(Path(str(photos)).glob("*.png"))
'''
FIELD = re.compile(r"^(?P<name>[A-Z_]+) = (?P<value>.*?)  #@param(?P<rest>.*)$", re.M)


def form_fields(nb) -> dict:
    """{NAME: value} of every form field of the notebook, as its source holds them."""
    return {m["name"]: eval(m["value"]) for c in nb.cells if c.cell_type == "code"
            for m in FIELD.finditer(c.source)}


def set_fields(nb, values: dict) -> None:
    """Change form fields as Colab does when a user edits them: the line in the source."""
    left = dict(values)
    for cell in nb.cells:
        def put(m):
            if m["name"] not in left:
                return m[0]
            return f"{m['name']} = {left.pop(m['name'])!r}  #@param{m['rest']}"
        cell.source = FIELD.sub(put, cell.source)
    assert not left, f"no such form field: {left}"


def _until_training(nb, gpu: bool):
    """The code cells up to and including the training cell, with the recorder (and the GPU
    stubs) added after the install cell."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cells.append(cell)
        if "ON_GPU = torch.cuda.is_available()" in cell.source:
            cells.append(nbformat.v4.new_code_cell(f"ON_GPU = {gpu}\n{RECORDER}"
                                                   + (GPU_STUBS if gpu else "")))
        if "train(config" in cell.source:
            break
    run = nbformat.v4.new_notebook()
    run.cells = cells
    return run


def _execute(nb, gpu: bool, tmp_path, monkeypatch) -> dict | None:
    """Run the notebook in a new kernel (a restart); what train received, if it was called."""
    home = tmp_path / "home"
    if gpu and not home.exists():  # the Drive folder (local off Colab) holds the photos
        from dreamkit.toy import write_subject_photos
        write_subject_photos(home / "dreamkit-drive" / "dreambooth" / "photos")
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    (tmp_path / "received.json").unlink(missing_ok=True)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    got = tmp_path / "received.json"
    return json.loads(got.read_text()) if got.exists() else None


# Every settings field changed; (field, value, the TrainConfig key and what it must hold there)
GPU_FIELDS = {"IDENTIFIER": "tzky", "CLASS_NOUN": "block", "STEPS": 123, "LEARNING_RATE": 3e-6,
              "PRIOR_PRESERVATION": True, "NUM_CLASS_IMAGES": 7}
STEP_BY_STEP_FIELDS = {"PRIOR_LOSS_WEIGHT": 0.6, "SAMPLE_EVERY": 40, "SEED": 5,
                       "INSTANCE_PROMPT": "a photo of {token} block on a table",
                       "RUN_NAME": "blocks"}
KEYS = {"IDENTIFIER": "identifier", "CLASS_NOUN": "class_noun", "STEPS": "max_train_steps",
        "LEARNING_RATE": "learning_rate", "PRIOR_PRESERVATION": "with_prior_preservation",
        "NUM_CLASS_IMAGES": "num_class_images", "PRIOR_LOSS_WEIGHT": "prior_loss_weight",
        "SAMPLE_EVERY": "sample_every", "SEED": "seed", "INSTANCE_PROMPT": "instance_prompt"}
CPU_KEYS = ("STEPS", "PRIOR_PRESERVATION", "NUM_CLASS_IMAGES", "PRIOR_LOSS_WEIGHT",
            "SAMPLE_EVERY", "SEED")  # the toy world sets the model, identifier, class and rate


def _fields(name: str, gpu: bool) -> dict:
    fields = dict(GPU_FIELDS, **(STEP_BY_STEP_FIELDS if name.startswith("02") else {}))
    if name.startswith("02") and gpu:
        fields["MODEL"] = "stabilityai/stable-diffusion-xl-base-1.0"  # the picker's other one
    return fields


# (02 on the GPU path: in the restart test below, which changes every field between its runs)
@pytest.mark.parametrize("name, gpu", [("01_quickstart.ipynb", False),
                                       ("01_quickstart.ipynb", True),
                                       ("02_step_by_step.ipynb", False)],
                         ids=["01-cpu", "01-gpu", "02-cpu"])
def test_every_form_field_reaches_train(name, gpu, tmp_path, monkeypatch):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    fields = _fields(name, gpu)
    set_fields(nb, fields)
    received = _execute(_until_training(nb, gpu), gpu, tmp_path, monkeypatch)
    _check_received(received, fields, name, gpu)


def _check_received(received: dict | None, fields: dict, name: str, gpu: bool) -> None:
    assert received is not None, "train was not called"
    keys = [k for k in fields if k in KEYS and (gpu or k in CPU_KEYS)]
    wrong = {k: (received[KEYS[k]], fields[k]) for k in keys if received[KEYS[k]] != fields[k]}
    assert not wrong, f"{name} ({'GPU' if gpu else 'CPU'}): (train got, form showed) {wrong}"
    if not gpu:  # the toy world's own, said in the notebook
        assert received["identifier"] == "sks" and "toy" in received["pretrained_model_name_or_path"]
    elif name.startswith("02"):  # SDXL from the picker: LoRA at 1024 px, on Drive
        assert received["pretrained_model_name_or_path"] == fields["MODEL"]
        assert received["use_lora"] and received["resolution"] == 1024
        assert received["output_dir"].endswith("dreamkit-drive/dreambooth/blocks")
    else:  # the quickstart: SD 1.5 with the T4 recipe, resuming on Drive
        assert received["pretrained_model_name_or_path"].endswith("stable-diffusion-v1-5")
        assert received["optimizer_in_backward"] and received["mixed_precision"] == "fp16"
        assert received["resume"] == "auto" and "dreamkit-drive" in received["output_dir"]


def test_settings_come_back_after_a_restart_and_a_change_is_used(tmp_path, monkeypatch):
    """Run all with the defaults; change every field, save the notebook (as Colab does on
    Drive), restart (a new kernel) and Run all: train gets what the form showed each time."""
    name, path = "02_step_by_step.ipynb", tmp_path / "02.ipynb"
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    defaults = form_fields(nb)
    first = _execute(_until_training(nb, True), True, tmp_path, monkeypatch)
    assert first["max_train_steps"] == defaults["STEPS"] == 400
    assert first["identifier"] == defaults["IDENTIFIER"] == "zshq"
    assert first["pretrained_model_name_or_path"] == defaults["MODEL"]
    fields = _fields(name, True)
    set_fields(nb, fields)
    nbformat.write(nb, path)  # the notebook as saved; the kernel is gone
    again = nbformat.read(path, as_version=4)
    assert form_fields(again) == {**defaults, **fields}
    second = _execute(_until_training(again, True), True, tmp_path, monkeypatch)
    _check_received(second, fields, name, True)
    assert second["seed"] != first["seed"] and second["resolution"] != first["resolution"]


def test_a_refused_field_stops_run_all_with_its_one_line(tmp_path, monkeypatch):
    shown = "identifier='my dog': use one rare word without spaces"
    nb = nbformat.read(ROOT / "notebooks" / "02_step_by_step.ipynb", as_version=4)
    set_fields(nb, {"IDENTIFIER": "my dog"})
    run = _until_training(nb, True)
    with pytest.raises(CellExecutionError):
        _execute(run, True, tmp_path, monkeypatch)
    assert not (tmp_path / "received.json").exists()  # never trained with another value
    stopped = next(c for c in run.cells if any(o.get("output_type") == "error"
                                               or o.get("name") == "stderr" and "✗" in o["text"]
                                               for o in c.get("outputs", [])))
    assert "6b. The settings, checked" in stopped.source
    text = "".join(o.get("text", "") for o in stopped.outputs)
    assert f"✗ {shown}" in text and "Traceback" not in text, text
