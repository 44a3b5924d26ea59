"""The Colab notebooks' forms drive what follows, as Colab users use them.

A Colab form field is a line `NAME = value  #@param ...`; when a user changes the field, Colab
rewrites that line, and the notebook keeps it. These tests do the same to the notebook's source,
then run it as Run all does, up to and including the training cell, on the CPU path and on the
GPU path (taken by setting ON_GPU, as a CUDA machine would). `train` (and, on the GPU path, what
would load Stable Diffusion or use CUDA) is replaced by a recorder. Each notebook's kernel first
runs it whole on the CPU, training for real (a kernel start and its imports saved): the
step-by-step notebook's under ipywidgets 7.7, the version Colab ships, and that kernel then runs
the widget tests, so the widget code is tested under both majors (the venv has 8.x). The
classroom notebook runs from the installed wheel (tests/test_toy_demo.py).
"""

import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from test_notebooks import (
    QUICKSTART_CPU,
    ROOT,
    STEP_BY_STEP_CPU,
    _inject,
    check_quickstart_on_cpu,
    check_step_by_step_on_cpu,
)

# Colab ships ipywidgets 7.7: a copy of it beside the venv (scripts/setup_env.sh), put first on
# the step-by-step kernel's path
SEVEN = Path(sys.prefix) / "ipywidgets7"
WIDGET_TESTS = ["tests/test_widgets.py", "tests/test_classroom.py",
                "tests/test_notebook_helpers.py", "tests/test_env_viewer.py"]


def _need_seven():
    if not (SEVEN / "ipywidgets").is_dir():
        pytest.skip(f"no ipywidgets 7.7 copy at {SEVEN}: run scripts/setup_env.sh")


def _widget_tests_cell(basetemp: Path):
    """A cell that runs the widget tests with pytest in the kernel it runs in (its imports
    made), after checking that kernel's ipywidgets is Colab's 7.7."""
    args = ["-q", "--color=no", "-p", "no:cacheprovider", "-p", "no:faulthandler", "-n", "0",
            f"--rootdir={ROOT}", f"--basetemp={basetemp}", *(str(ROOT / t) for t in WIDGET_TESTS)]
    return nbformat.v4.new_code_cell(
        "import ipywidgets, pytest\n"
        "assert ipywidgets.__version__ == '7.7.5', ipywidgets.__version__\n"
        f"assert pytest.main({args!r}) == 0, 'the widget tests failed under ipywidgets 7.7'")


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


class Kernel:
    """One notebook kernel, in which Run all is done again and again as a user does (a new
    Kernel is a restart). `run_all(cells)`: (what train received or None, the cell where Run
    all stopped with an error or None)."""

    def __init__(self, tmp_path, monkeypatch, gpu_drive: bool = True, path=(ROOT,)):
        home = tmp_path / "home"
        if gpu_drive and not home.exists():  # the Drive folder (local off Colab): the photos
            from dreamkit.toy import write_subject_photos
            write_subject_photos(home / "dreamkit-drive" / "dreambooth" / "photos")
        home.mkdir(exist_ok=True)
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(map(str, path)))
        self.path = tmp_path
        self.client = NotebookClient(nbformat.v4.new_notebook(), timeout=600,
                                     kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})

    def __enter__(self):
        self._kernel = self.client.setup_kernel()
        self._kernel.__enter__()
        return self

    def __exit__(self, *exc):
        return self._kernel.__exit__(*exc)

    def run_all(self, nb) -> tuple[dict | None, object]:
        got = self.path / "received.json"
        got.unlink(missing_ok=True)
        self.client.nb = nb
        for i, cell in enumerate(nb.cells):
            try:
                self.client.execute_cell(cell, i)
            except CellExecutionError:
                return None if not got.exists() else json.loads(got.read_text()), cell
        self.client.set_widgets_metadata()  # as a whole run saves them into the notebook
        return (json.loads(got.read_text()) if got.exists() else None), None


def _stopped_with_one_line(stopped, title: str, line: str) -> None:
    """Run all stopped at the settings cell with the refusal's one line, no traceback."""
    assert stopped is not None, "Run all did not stop"
    assert title in stopped.source, stopped.source[:80]
    text = "".join(o.get("text", "") for o in stopped.outputs)
    assert f"✗ {line}" in text and "Traceback" not in text, text


def _said(cell) -> str:
    """A stopped cell's title and what it printed (for a failing test's message)."""
    return cell.source.splitlines()[0] + "\n" + "".join(
        o.get("text", "") + "".join(o.get("traceback", [])) for o in cell.outputs)[-3000:]


def _printed(nb) -> str:
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


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


# A value the form must refuse on either path, and the one line Run all stops with
REFUSED = {"STEPS": (0, "max_train_steps=0: must be a whole number of at least 1"),
           "LEARNING_RATE": (-1e-05, "learning_rate=-1e-05: must be a finite number above 0"),
           "IDENTIFIER": ("my dog", "identifier='my dog': use one rare word without spaces")}


def _refusals(kernel, name: str, title: str, gpu: bool) -> None:
    for field, (value, line) in REFUSED.items():
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        set_fields(nb, {field: value})
        received, stopped = kernel.run_all(_until_training(nb, gpu))
        assert received is None, f"{field}={value!r}: trained with another value"
        _stopped_with_one_line(stopped, title, line)


@pytest.mark.slow
def test_quickstart_runs_whole_then_its_forms_in_the_same_kernel(tmp_path, monkeypatch):
    """One kernel, Run all again and again: first the whole notebook on the CPU, training
    and measuring for real (test_notebooks.check_quickstart_on_cpu); then every field
    reaches train on the CPU path (and what the toy world changed is printed), refused values
    stop at the settings cell with one line on both paths, and every field reaches train on
    the GPU path."""
    name, title = "01_quickstart.ipynb", "3b. The settings, checked"
    with Kernel(tmp_path, monkeypatch) as kernel:
        whole = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        _inject(whole, QUICKSTART_CPU)
        _, stopped = kernel.run_all(whole)
        assert stopped is None, _said(stopped)
        check_quickstart_on_cpu(whole, tmp_path)
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        fields = _fields(name, False)
        set_fields(nb, fields)
        run = _until_training(nb, False)
        received, stopped = kernel.run_all(run)
        assert stopped is None, _said(stopped)
        _check_received(received, fields, name, False)
        said = _printed(run)  # the toy world's replacements, each said with its value
        for change in ("identifier 'tzky' -> 'sks'", "class_noun 'block' -> 'toy'",
                       "learning_rate 3e-06 -> 0.0003"):
            assert change in said, said
        _refusals(kernel, name, title, gpu=False)
        _refusals(kernel, name, title, gpu=True)
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        fields = _fields(name, True)
        set_fields(nb, fields)
        received, stopped = kernel.run_all(_until_training(nb, True))
        assert stopped is None, _said(stopped)
        _check_received(received, fields, name, True)


@pytest.mark.slow
def test_step_by_step_runs_whole_under_ipywidgets_7_then_its_forms_and_a_restart(tmp_path,
                                                                                  monkeypatch):
    """Kernel 1, with Colab's ipywidgets 7.7 first on its path: the whole notebook on the CPU,
    training and measuring for real (test_notebooks.check_step_by_step_on_cpu); the widget
    tests (WIDGET_TESTS) pass there; every field reaches train on the CPU path; refused values
    stop at 6b with one line on both paths; Run all with the defaults on the GPU path. Then
    every field changed, the notebook saved (as Colab does on Drive), a new kernel (a restart)
    and Run all: train gets what the form showed each time."""
    _need_seven()
    name, title = "02_step_by_step.ipynb", "6b. The settings, checked"
    path = tmp_path / "02.ipynb"
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    defaults = form_fields(nb)
    with Kernel(tmp_path, monkeypatch, path=(SEVEN, ROOT)) as kernel:
        whole = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        _inject(whole, STEP_BY_STEP_CPU)
        _, stopped = kernel.run_all(whole)
        assert stopped is None, _said(stopped)
        check_step_by_step_on_cpu(whole, tmp_path)
        # the widget tests under 7.7, in this kernel (before the forms' runs replace train)
        tests = nbformat.v4.new_notebook(cells=[_widget_tests_cell(tmp_path / "widget-tests")])
        _, stopped = kernel.run_all(tests)
        said = _printed(tests)
        assert stopped is None, said[-3000:]
        assert re.search(r"\b\d+ passed\b", said), said[-2000:]
        assert not re.search(r"\b\d+ (failed|skipped|errors?)\b", said), said[-2000:]
        cpu = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        fields = _fields(name, False)
        set_fields(cpu, fields)
        run = _until_training(cpu, False)
        received, stopped = kernel.run_all(run)
        assert stopped is None, _said(stopped)
        _check_received(received, fields, name, False)
        assert "identifier 'tzky' -> 'sks'" in _printed(run)  # what the toy world changed
        _refusals(kernel, name, title, gpu=False)
        _refusals(kernel, name, title, gpu=True)
        first, stopped = kernel.run_all(_until_training(nb, True))
        assert stopped is None, _said(stopped)
    assert first["max_train_steps"] == defaults["STEPS"] == 400
    assert first["identifier"] == defaults["IDENTIFIER"] == "zshq"
    assert first["pretrained_model_name_or_path"] == defaults["MODEL"]
    fields = _fields(name, True)
    set_fields(nb, fields)
    nbformat.write(nb, path)  # the notebook as saved; the kernel is gone
    again = nbformat.read(path, as_version=4)
    assert form_fields(again) == {**defaults, **fields}
    with Kernel(tmp_path, monkeypatch) as kernel:
        second, _ = kernel.run_all(_until_training(again, True))
    _check_received(second, fields, name, True)
    assert second["seed"] != first["seed"] and second["resolution"] != first["resolution"]
