"""A stand-in for diffusers' train_dreambooth.py (tests/test_peer.py): it takes the same flags,
checks what benchmarks/peer.py gives it, and writes a pipeline's marker, as the script does."""

import argparse
import json
import time
from pathlib import Path

ap = argparse.ArgumentParser()
for flag in ("pretrained_model_name_or_path", "instance_data_dir", "class_data_dir",
             "instance_prompt", "class_prompt", "num_class_images", "resolution",
             "train_batch_size", "max_train_steps", "learning_rate", "output_dir",
             "mixed_precision", "seed", "checkpointing_steps"):
    ap.add_argument(f"--{flag}", required=True)
ap.add_argument("--with_prior_preservation", action="store_true")
a = ap.parse_args()
photos = list(Path(a.instance_data_dir).iterdir())
assert photos and all(p.suffix == ".png" for p in photos), photos  # images only
assert len(list(Path(a.class_data_dir).glob("*.png"))) >= int(a.num_class_images)
time.sleep(0.01 * int(a.max_train_steps))  # "training"
Path(a.output_dir).mkdir(parents=True)
(Path(a.output_dir) / "model_index.json").write_text(json.dumps({"steps": a.max_train_steps}))
