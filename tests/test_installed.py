"""Installed, not checked out: a wheel of dreamkit (the `installed` fixture, conftest.py),
installed into a fresh folder and run from a temporary folder with no checkout on the path (the
Colab cell installs dreamkit the same way, with `pip install git+...`). The classroom notebook
runs from the same installed copy in tests/test_toy_demo.py, where its two runs are the demo's
measured runs."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path


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
