"""Every panel drives what follows: in the quickstart and the step-by-step notebook, on the CPU
path and on the GPU path, each control of the settings panel reaches the config that `train`
receives.

The notebooks run as users run them, up to and including the training cell, with one cell added
after the panel that changes every control. `train` (and, on the GPU path, what would load
Stable Diffusion or use CUDA) is replaced by a recorder, so no model is trained here; the GPU
path is taken by setting ON_GPU, as a CUDA machine would.
"""

import json

import nbformat
import pytest
from nbclient import NotebookClient

from test_notebooks import ROOT

RECORDER = '''
import json, dreamkit, dreamkit.models, dreamkit.planner, dreamkit.prior
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
dreamkit.planner.plan = lambda config, **kw: _Plan()
dreamkit.models.load_pipeline = lambda *a, **k: None
dreamkit.prior.generate_class_images = lambda *a, **k: sorted(Path(str(photos)).glob("*.png"))
'''


def _changes(gpu: bool) -> dict:
    """A new value for every control of the panel (widgets.DEFAULT_FIELDS), all valid."""
    return {"identifier": "tzky" if gpu else "qxv", "class_noun": "block",
            "instance_prompt": "a photo of {token} block on a table",
            "class_prompt": "a photo of a wooden block", "max_train_steps": 123,
            "with_prior_preservation": True, "prior_loss_weight": 0.6, "num_class_images": 7,
            "learning_rate": 3e-6 if gpu else 3e-4, "resolution": 256 if gpu else 32,
            "step_mode": "one_pass"}


def _until_training(path, gpu: bool, changes: dict):
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cells.append(cell)
        if "ON_GPU = torch.cuda.is_available()" in cell.source:
            cells.append(nbformat.v4.new_code_cell(
                f"ON_GPU = {gpu}\n{RECORDER}"))
        if "panel = ConfigPanel(" in cell.source:
            lines = [f"panel.set({k!r}, {v!r})" for k, v in changes.items()]
            lines.append("assert not [k for k in panel.controls if panel.message(k) "
                         "and k != 'identifier'], {k: panel.message(k) for k in panel.controls}")
            cells.append(nbformat.v4.new_code_cell("\n".join(lines)))
            if gpu:
                cells.append(nbformat.v4.new_code_cell(GPU_STUBS))
        if "train(config" in cell.source:
            break
    nb.cells = cells
    return nb


@pytest.mark.parametrize("gpu", [False, True], ids=["cpu", "gpu"])
@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "02_step_by_step.ipynb"])
def test_every_control_reaches_train(name, gpu, tmp_path, monkeypatch):
    changes = _changes(gpu)
    nb = _until_training(ROOT / "notebooks" / name, gpu, changes)
    assert sum("train(config" in c.source for c in nb.cells) == 1, "no training cell found"
    (tmp_path / "home").mkdir()
    if gpu:  # the Drive folder (a local folder off Colab) already holds the photos
        from dreamkit.toy import write_subject_photos
        write_subject_photos(tmp_path / "home" / "dreamkit-drive" / "dreambooth" / "photos")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    received = json.loads((tmp_path / "received.json").read_text())
    wrong = {k: (received[k], v) for k, v in changes.items() if received[k] != v}
    assert not wrong, f"{name} ({'GPU' if gpu else 'CPU'}): (train got, panel showed) {wrong}"
    if gpu:  # and the machine's recipe stays: the SD 1.5 model, the T4 settings, Drive
        assert received["pretrained_model_name_or_path"].endswith("stable-diffusion-v1-5")
        assert received["optimizer_in_backward"] and received["resume"] == "auto"
        assert "dreamkit-drive" in received["output_dir"]
