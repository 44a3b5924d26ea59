"""Shared fixtures: a tiny offline Stable Diffusion, synthetic photos, the real photo set."""

import os
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

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dreambooth"


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


# The longest files first: pytest-xdist hands out files in collection order, and alphabetical
# order would start the two demo files last, leaving one worker alone for the last two minutes.
LONGEST_FIRST = ("test_toy_demo.py", "test_planner.py", "test_installed.py",
                 "test_notebook_forms.py", "test_checkpoint.py", "test_notebooks.py",
                 "test_toy_two_subjects.py", "test_browser.py", "test_widgets_7.py")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=rank)  # stable: tests keep their order within a file
