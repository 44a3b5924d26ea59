"""Installed, not checked out: a wheel of dreamkit, installed into a fresh folder and run from a
temporary folder with no checkout on the path, runs the demo and the classroom notebook (the
Colab cell installs dreamkit the same way, with `pip install git+...`)."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_notebooks import ROOT, _clean, _images, _run, _text


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site folder holding only the installed dreamkit, the wheel). Built from a copy of the
    sources, so nothing is written into the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT / "dreamkit", src / "dreamkit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
                          str(src)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp / "dist").glob("dreamkit-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", str(tmp / "site"), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    return tmp / "site", wheel


def _env(site: Path) -> dict:
    # the installed copy first on the path; the checkout's editable install comes after it
    return {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}


def test_the_wheel_carries_the_toy_base_model(installed):
    names = zipfile.ZipFile(installed[1]).namelist()
    for part in ("model_index.json", "unet/diffusion_pytorch_model.safetensors",
                 "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
                 "tokenizer/tokenizer.json", "scheduler/scheduler_config.json"):
        assert f"dreamkit/toy/base-model/{part}" in names, part


def test_the_installed_commands_run_from_any_folder_with_their_data(installed, tmp_path):
    """The installed `dreamkit` (not the checkout's), run from a folder without the checkout:
    its commands, the shipped vocabulary and word lists, the toy model's files. (The classroom
    notebook below runs the demo's whole machinery from the same installed copy.)"""
    site, _ = installed
    where = subprocess.run([sys.executable, "-c", "import dreamkit; print(dreamkit.__file__)"],
                           cwd=tmp_path, env=_env(site), capture_output=True, text=True)
    assert Path(where.stdout.strip()).is_relative_to(site), where  # not the checkout's
    r = subprocess.run([sys.executable, "-m", "dreamkit", "check-token", "hitler", "--model",
                        "sd-vocabulary", "--class_noun", "dog"], cwd=tmp_path, env=_env(site),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "is a well-known person" in r.stdout, r.stdout + r.stderr
    assert "rare single tokens of this model to try instead" in r.stdout
    r = subprocess.run([sys.executable, "-m", "dreamkit", "plan-memory",
                        "--pretrained_model_name_or_path", "someone/my-sd-model",
                        "--use_lora", "--gradient_checkpointing", "--resolution", "256"],
                       cwd=tmp_path, env=_env(site), capture_output=True, text=True, timeout=300)
    assert r.stdout.startswith("assumed SD 1.5"), r.stdout + r.stderr  # the shipped configs


@pytest.mark.slow
def test_the_installed_package_runs_the_classroom_notebook(installed, tmp_path):
    site, _ = installed
    nb = _run(ROOT / "notebooks" / "03_classroom_toy_world.ipynb", tmp_path, {"STEPS": 20},
              PYTHONPATH=str(site), HF_HUB_OFFLINE="1")
    text = _text(nb)
    _clean(nb)
    assert "rifle" in text and "splits into" in text  # the token check, both cases
    assert text.count("subject_fidelity") >= 2 and text.count("class_drift") >= 2
    assert _images(nb) >= 6  # world, photos, live curves, grids, the comparison chart
    assert "run 2: no prior, text encoder on, 20 steps, seed 0, 'sks'" in text  # the table
    for n, prior in ((1, True), (2, False)):  # the second run unticked the panel's switch
        m = json.loads((tmp_path / "classroom" / f"run-{n}" / "metrics.json").read_text())
        assert m["with_prior_preservation"] is prior
        assert m["steps"] == 20 and set(m["after"]) >= {"subject_fidelity", "class_drift"}
