"""The widget code under ipywidgets 7.7, the version Colab ships, as well as under the 8.x of
this environment: the widget tests run again, and the step-by-step notebook (captions, progress
bars, live view) runs whole, with a 7.7 copy first on the path (installed beside the venv by
scripts/setup_env.sh)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SEVEN = Path(sys.prefix) / "ipywidgets7"
WIDGET_TESTS = ["tests/test_widgets.py", "tests/test_classroom.py", "tests/test_notebook_helpers.py",
                "tests/test_env_viewer.py"]


def _need_seven():
    if not (SEVEN / "ipywidgets").is_dir():
        pytest.skip(f"no ipywidgets 7.7 copy at {SEVEN}: run scripts/setup_env.sh")


def test_widget_tests_pass_under_ipywidgets_7():
    _need_seven()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SEVEN), str(ROOT)]),
               HF_HUB_OFFLINE="1")
    version = subprocess.run([sys.executable, "-c", "import ipywidgets; print(ipywidgets.__version__)"],
                             env=env, capture_output=True, text=True, cwd=ROOT)
    assert version.stdout.strip() == "7.7.5", version.stderr[-2000:]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-n", "0", *WIDGET_TESTS], env=env, capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]


@pytest.mark.slow
def test_the_step_by_step_notebook_runs_whole_under_ipywidgets_7(tmp_path):
    """Every stage of 02 on the CPU, once, with the widgets of Colab's ipywidgets 7.7 (the
    browser check runs it again in JupyterLab with this environment's 8.x)."""
    from test_notebooks import _clean, _images, _run, _text
    _need_seven()
    nb = _run(ROOT / "notebooks" / "02_step_by_step.ipynb", tmp_path,
              {"STEPS": 10, "NUM_CLASS_IMAGES": 2, "SAMPLE_EVERY": 5, "TRY_STEPS": 3, "COUNT": 1},
              HF_HUB_OFFLINE="1", PYTHONPATH=os.pathsep.join([str(SEVEN), str(ROOT)]))
    # the widgets the kernel made are 7.x's (their controls' protocol 1.5.0; 8.x's is 2.0.0)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    versions = {m["model_module_version"] for m in state.values()
                if m["model_module"] == "@jupyter-widgets/controls"}
    names = {m["model_name"] for m in state.values()}
    assert versions == {"1.5.0"}, versions
    assert {"TextModel", "ButtonModel", "FloatProgressModel"} <= names, names  # captions, bar
    text = _text(nb)
    _clean(nb)
    assert "ipywidgets 7.7.5" in text  # the machine report names the kernel's widgets,
    # and that this environment's JupyterLab 4 could not draw them
    assert "whose widget front end draws only ipywidgets 8's widgets" in text
    assert "No GPU: the toy world on the CPU" in text
    assert "12 image(s)" in text and "0 problem(s)" in text  # the photos, checked
    assert "2 class images of 'a photo of a toy'" in text
    assert "best step: step " in text  # scored while training, the rule named a step
    assert _images(nb) >= 6  # photos, doctor grid, class images, curves, samples, comparisons
    run = tmp_path / "step-by-step" / "run"
    assert (run / "model_index.json").exists() and (run / "scores.json").exists()
    assert [e["step"] for e in json.loads((run / "scores.json").read_text())["curve"]] == [5, 10]
    # try your model: the pictures shown are saved, with their settings, and open
    from PIL import Image
    tried = sorted((run / "generated").glob("*/*.png"))
    assert len(tried) == 4 and Image.open(tried[0]).text["guidance"] == "7.5"
    # export: one file in the original layout (fp16) that diffusers loads back
    from diffusers import StableDiffusionPipeline
    export = tmp_path / "step-by-step" / "run-export"
    pipe = StableDiffusionPipeline.from_single_file(str(export / "model.safetensors"),
                                                    config=str(export), local_files_only=True)
    assert pipe.unet.config.sample_size == 16 and "one file: pipe = StableDiffusionPipeline" in text
    # free Drive space: what the folder holds, before and after
    assert "the run folder holds:" in text and "freed " in text
