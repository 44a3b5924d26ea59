"""Shared fixtures: a tiny offline Stable Diffusion, synthetic photos, the real photo set."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # any hidden download fails at once
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Plans are kept on disk (planning/plancache.py): in a folder of this test session, not ~/.cache
os.environ.setdefault("DREAMKIT_CACHE", tempfile.mkdtemp(prefix="dreamkit-cache-"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on two cores: one thread each (and in the notebook kernels
    # and CLI processes they start), or the four threads would fight over the cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data" / "dreambooth"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from dreamkit.testing import make_tiny_sd
    return make_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd")


@pytest.fixture(scope="session")
def tiny_vpred_model(tmp_path_factory):
    from dreamkit.testing import make_tiny_sd
    return make_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd-v", prediction_type="v_prediction")


@pytest.fixture
def photos(tmp_path):
    from dreamkit.testing import make_photos
    make_photos(tmp_path / "photos", n=4, size=48)
    return tmp_path / "photos"


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real photos not found at {SHARED_DATA} (the shared/ folder beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """(site folder holding only an installed dreamkit, the wheel): installed, not checked out,
    as the Colab cell installs it. Built from a copy of the sources, so nothing is written into
    the checkout (tests/test_installed.py, tests/test_toy_demo.py)."""
    # Built once for the session: the workers of pytest-xdist share their base folder's parent
    # (a lock makes the second wait for the first), so the wheel is not built twice.
    from filelock import FileLock
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared
    tmp = shared / "wheel-once"
    with FileLock(str(shared / "wheel-once.lock")):
        if not (tmp / "site").is_dir():
            _build_and_install(tmp)
    return tmp / "site", next((tmp / "dist").glob("dreamkit-*.whl"))


def _build_and_install(tmp: Path) -> None:
    shutil.rmtree(tmp, ignore_errors=True)  # what a failed build left
    src = tmp / "src"
    shutil.copytree(ROOT / "dreamkit", src / "dreamkit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
                          str(src)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp / "dist").glob("dreamkit-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", str(tmp / "site-part"), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    (tmp / "site-part").rename(tmp / "site")  # whole, or not there


# The longest files first (seconds measured in a whole run, 2026-12-03): pytest-xdist hands
# out files in collection order (with --no-loadscope-reorder, pyproject.toml; without it, by
# their number of tests), and alphabetical order would start the classroom notebook's
# file last, leaving one worker alone for its three minutes; longest first, the last files
# handed out are short, and both workers finish near the same time.
LONGEST_FIRST = ("test_toy_demo.py",  # 190-220 s: the classroom notebook's two runs
                 # then, beside it, a minute of photos: by the time the two notebooks run
                 # whole (~90 s), the classroom has measured the base model (kept, ~20 s; the
                 # quickstart shows the same measures)
                 "test_doctor.py", "test_notebook_forms.py",
                 "test_toy_two_subjects.py", "test_checkpoint.py",
                 "test_planner.py", "test_browser.py", "test_export_advice.py",
                 "test_distributed.py", "test_cli.py", "test_optim.py",
                 "test_installed.py",
                 "test_knobs.py", "test_evaluate.py", "test_train.py", "test_lora.py",
                 "test_gpu_rehearsal.py", "test_toy_pretrain.py", "test_bad_inputs_commands.py",
                 "test_tokens.py", "test_house.py")  # then under 5 s


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: tests keep their order within a file
