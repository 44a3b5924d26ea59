"""The classroom's "change one control" table (docs/classroom.md), measured.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/classroom_changes.py [ROWS [OUT]]
    # -> classroom_changes.json; ROWS: row numbers (0 = defaults), e.g. 0,2,4

The toy demo at seed 0 with one setting changed from the defaults each time, as a learner
changes one control of notebook 03's panel; one run at a time.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from dreamkit.toy.demo import demo_config, run_demo

CHANGES = {
    "defaults": {},
    "with_prior_preservation off": {"with_prior_preservation": False},
    "prior_loss_weight 0.3": {"prior_loss_weight": 0.3},
    "train_text_encoder off": {"train_text_encoder": False},
    "max_train_steps 100": {"max_train_steps": 100},
    "max_train_steps 200": {"max_train_steps": 200},
    "identifier qxv": {"identifier": "qxv"},
    "class_prompt 'a photo of a red toy'": {"class_prompt": "a photo of a red toy"},
}
KEYS = ("subject_fidelity", "prompt_fidelity", "class_drift", "class_drift_mean",
        "class_drift_worst", "class_drift_worst_prompt", "class_drift_by_prompt")


def main(rows=None, seed: int = 0) -> dict:
    out = {}
    for k, (name, change) in enumerate(CHANGES.items()):
        if rows is not None and k not in rows:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "demo"
            config = demo_config(root, root / "photos", seed=seed).replace(**change)
            s = run_demo(root, config=config, callbacks=[])
        out[name] = {"seconds": s["seconds"], **{k: s["after"][k] for k in KEYS}}
        a = out[name]
        print(f"{name:40} subject {a['subject_fidelity']:.2f} prompt {a['prompt_fidelity']:.2f} "
              f"drift mean {a['class_drift_mean']:.2f} worst {a['class_drift_worst']:.2f} "
              f"({a['class_drift_worst_prompt']})", flush=True)
    return out


if __name__ == "__main__":
    rows = [int(x) for x in sys.argv[1].split(",")] if len(sys.argv) > 1 else None
    path = Path(sys.argv[2]) if len(sys.argv) > 2 else \
        Path(__file__).with_name("classroom_changes.json")
    path.write_text(json.dumps(main(rows), indent=1) + "\n")
