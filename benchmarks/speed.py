"""Steps per second on the toy model on the CPU: latent caching vs encoding every step, one pass
vs two passes, in one run (ratios are what carry over to other machines).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/speed.py      # writes benchmarks/speed.json

The demo's settings (64 px, batch 1 + 1 with prior preservation, UNet only), 60 steps each;
the first 10 steps are warm-up and not counted.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import torch

from dreamkit.toy.demo import demo_config
from dreamkit.toy import write_subject_photos
from dreamkit.training.loop import train

VARIANTS = {
    "one_pass": {"step_mode": "one_pass"},
    "two_pass": {"step_mode": "two_pass"},
    "one_pass + cache_latents": {"step_mode": "one_pass", "cache_latents": True},
    "two_pass + cache_latents": {"step_mode": "two_pass", "cache_latents": True},
}


def main() -> int:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_subject_photos(tmp / "photos")
        base = demo_config(tmp, tmp / "photos", steps=60).replace(
            train_text_encoder=False, num_class_images=10, checkpointing_steps=0,
            train_batch_size=1,  # the heading's batch 1 + 1, whatever the demo takes
            class_dir=str(tmp / "class_images"))
        for name, change in VARIANTS.items():
            result = train(base.replace(output_dir=str(tmp / name), **change), callbacks=[])
            times = [h["seconds"] for h in result.history[10:]]
            rows[name] = round(len(times) / sum(times), 2)
            print(f"{name:28}{rows[name]:6.2f} steps/s")
    ratios = {"two_pass / one_pass": round(rows["two_pass"] / rows["one_pass"], 3),
              "cache / no cache (one_pass)": round(rows["one_pass + cache_latents"]
                                                   / rows["one_pass"], 3),
              "cache / no cache (two_pass)": round(rows["two_pass + cache_latents"]
                                                   / rows["two_pass"], 3)}
    for k, v in ratios.items():
        print(f"{k:28}{v:6.3f}")
    out = Path(__file__).with_name("speed.json")
    out.write_text(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(),
                               "steps_per_second": rows, "ratios": ratios}, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
