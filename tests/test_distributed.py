"""`dreamkit train` under torchrun with 2 CPU processes (gloo): both ranks end identical."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_process_training_ends_with_the_same_weights(tiny_model, photos, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT), "MASTER_ADDR": "127.0.0.1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", "29517", str(ROOT / "tests" / "dist_train.py"),
           "--pretrained_model_name_or_path", str(tiny_model), "--instance_dir", str(photos),
           "--class_noun", "toy", "--with_prior_preservation", "--num_class_images", "2",
           "--class_inference_steps", "2", "--resolution", "32", "--max_train_steps", "3",
           "--learning_rate", "1e-3", "--step_mode", "two_pass", "--sample_steps", "1",
           "--num_sample_images", "1", "--output_dir", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    lines = [(out / f"rank{i}.txt").read_text().split() for i in (0, 1)]
    assert lines[0][0] == "2" and lines[1][0] == "2", "not a 2-process group"
    assert lines[0][2] == lines[1][2] == "3"
    assert lines[0][1] == lines[1][1], "ranks ended with different weights"
    # Only rank 0 wrote class images and the model.
    assert len(list((out / "class_images").glob("*.png"))) == 2
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()
