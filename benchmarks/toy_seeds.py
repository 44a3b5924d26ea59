"""The toy demo on five training seeds, with and without prior preservation.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/toy_seeds.py [SEEDS [OUT]]  # -> toy_seeds.json

One run at a time (run it with nothing else on the machine: the seconds are recorded).
Evaluation seeds are fixed; class drift is measured on 8 class prompts (drift_prompts():
the plain one, the class in each of the 4 places, which the demo's class images are drawn
for, and in each of 3 colours, which they never are), 12 pictures each, besides the 24
pictures of "a photo of a toy" (class_drift).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from dreamkit.toy.demo import run_demo

KEYS = ("subject_fidelity", "prompt_fidelity", "class_drift", "class_drift_mean",
        "class_drift_worst", "class_drift_worst_prompt", "class_drift_by_prompt",
        "class_diversity")


def main(seeds=(0, 1, 2, 3, 4)) -> list:
    rows = []
    for prior in (True, False):
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                s = run_demo(Path(tmp) / "demo", seed=seed, with_prior_preservation=prior,
                             callbacks=[])
            row = {"seed": seed, "prior": prior, "seconds": s["seconds"],
                   "stages": s["seconds_by_stage"], "after": {k: s["after"][k] for k in KEYS}}
            rows.append(row)
            a = row["after"]
            print(f"seed {seed} prior {prior}: subject {a['subject_fidelity']:.3f} prompt "
                  f"{a['prompt_fidelity']:.3f} drift mean {a['class_drift_mean']:.3f} worst "
                  f"{a['class_drift_worst']:.3f} ({a['class_drift_worst_prompt']}), "
                  f"{s['seconds']} s", flush=True)
    return rows


if __name__ == "__main__":
    seeds = [int(x) for x in sys.argv[1].split(",")] if len(sys.argv) > 1 else (0, 1, 2, 3, 4)
    out = main(seeds)
    path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).with_name("toy_seeds.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
