"""The widget code under ipywidgets 7.7, the version Colab ships, as well as under the 8.x of
this environment: the widget tests run again with a 7.7 copy first on the path (installed
beside the venv by scripts/setup_env.sh). The step-by-step notebook (captions, progress bars,
live view) runs whole under it in tests/test_notebook_forms.py, in the kernel its forms are
then tried in."""

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
