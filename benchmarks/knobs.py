"""What each training knob does, measured in the toy world: docs/knobs.md.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/knobs.py run [ROWS [SEEDS [PART]]]
    .venv/bin/python benchmarks/knobs.py doc      # knobs*.json -> docs/knobs.md

`run` trains the toy demo (500 steps, prior preservation, the text encoder trained) with one
knob changed from the defaults at a time, for each seed, and measures what the demo measures:
subject fidelity (the subject drawn in the four places), prompt fidelity (the place drawn) and
class drift (the class prompts turned into the subject; mean over the 8 class prompts). LoRA's
knobs (DoRA, dropout) are measured against a LoRA run, since they exist only there. ROWS:
comma-separated row numbers of KNOBS (0 = defaults; default all); SEEDS: comma-separated (default 0,1,2); PART: a suffix, so
that two processes (one thread each) can run side by side into knobs_PART.json. Times are wall
seconds of the whole demo with whatever else the machine ran; compare them within one table.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "knobs.md"
LORA = {"use_lora": True, "train_text_encoder": False, "learning_rate": 2e-3}

# row -> (the changes from the demo's defaults, the row it is compared with)
KNOBS = {
    "defaults": ({}, None),
    "snr_gamma 5": ({"snr_gamma": 5.0}, "defaults"),
    "noise_offset 0.1": ({"noise_offset": 0.1}, "defaults"),
    "random_flip on": ({"random_flip": True}, "defaults"),
    "optimizer prodigy, lr 1.0": ({"optimizer": "prodigy", "learning_rate": 1.0,
                                   "text_encoder_lr": 1.0}, "defaults"),
    "lr_scheduler cosine_with_restarts, 2 cycles": ({"lr_scheduler": "cosine_with_restarts",
                                                     "lr_num_cycles": 2}, "defaults"),
    "text_encoder_use_attention_mask on": ({"text_encoder_use_attention_mask": True},
                                           "defaults"),
    "LoRA (rank 4, lr 2e-3, text encoder frozen)": (LORA, "defaults"),
    "LoRA + use_dora": ({**LORA, "use_dora": True},
                        "LoRA (rank 4, lr 2e-3, text encoder frozen)"),
    "LoRA + lora_dropout 0.1": ({**LORA, "lora_dropout": 0.1},
                                "LoRA (rank 4, lr 2e-3, text encoder frozen)"),
}
KEYS = ("subject_fidelity", "prompt_fidelity", "class_drift_mean", "class_drift_worst")


def run(names, seeds, part: str) -> None:
    from dreamkit.toy.demo import demo_config, run_demo

    path = HERE / f"knobs{'_' + part if part else ''}.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    for name in names:
        for seed in seeds:
            if str(seed) in done.get(name, {}):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                root = Path(tmp) / "demo"
                config = demo_config(root, root / "photos", seed=seed).replace(**KNOBS[name][0])
                s = run_demo(root, config=config, callbacks=[])
            done.setdefault(name, {})[str(seed)] = {"seconds": s["seconds"],
                                                    **{k: s["after"][k] for k in KEYS}}
            path.write_text(json.dumps(done, indent=1) + "\n")  # after every run: resumable
            a = done[name][str(seed)]
            print(f"{name:45} seed {seed}: subject {a['subject_fidelity']:.2f} prompt "
                  f"{a['prompt_fidelity']:.2f} drift {a['class_drift_mean']:.2f} "
                  f"({a['seconds']:.0f} s)", flush=True)


def _merged() -> dict:
    out: dict = {}
    for path in sorted(HERE.glob("knobs*.json")):
        for name, by_seed in json.loads(path.read_text()).items():
            out.setdefault(name, {}).update(by_seed)
    return out


def _cell(values: list, base: list | None, digits: int = 2) -> str:
    """mean ± spread (half the range) over seeds, and the change against the compared row."""
    mean = statistics.fmean(values)
    spread = (max(values) - min(values)) / 2
    text = f"{mean:.{digits}f} ± {spread:.{digits}f}"
    if base:
        text += f" ({mean - statistics.fmean(base):+.{digits}f})"
    return text


def doc() -> None:
    results = _merged()
    rows = []
    for name, (changes, compared) in KNOBS.items():
        if name not in results:
            continue
        by_seed = results[name]
        seeds = sorted(by_seed, key=int)
        base = results.get(compared, {}) if compared else {}
        common = [s for s in seeds if s in base]
        cells = [_cell([by_seed[s][k] for s in seeds],
                       [base[s][k] for s in common] if common else None) for k in KEYS]
        t = statistics.fmean(by_seed[s]["seconds"] for s in seeds)
        rows.append(f"| {name} | {compared or '—'} | {', '.join(seeds)} | " + " | ".join(cells)
                    + f" | {t:.0f} |")
    DOC.write_text(HEADER + "\n".join(rows) + "\n" + FOOTER)
    print(f"wrote {DOC} ({len(rows)} rows)")


HEADER = """# What the training knobs do: measured in the toy world

Written by `benchmarks/knobs.py doc` from the runs of `benchmarks/knobs.py run` (do not edit by
hand). Each row is the toy demo (500 steps, prior preservation with 50 class images, the text
encoder trained, 64 px; the recorded runs used the demo of 2026-12-02, one photo a step at UNet
lr 2e-4; the demo now takes three a step at 3e-4, and a new `run` measures that) with one knob
changed from the defaults, run once per seed; LoRA's knobs
are changed on a LoRA run, the row they are compared with. Each cell is the mean over the seeds
± half the range (the spread), then, in brackets, the change against the compared row's mean over
the same seeds. Subject fidelity: the share of pictures of the subject in four places that show
the subject (higher is better); prompt fidelity: the share that show the place asked for
(higher is better); class drift: the share of pictures of the *class* (8 class prompts: plainly,
in every place, in three colours) that show the subject instead (lower is better). Seconds: the
whole demo, wall clock, two runs side by side on a 2-core machine, one thread each (compare
within this table only).

The toy world is small and exact: what it measures is what the knob does to a tiny model on a
two-minute run, with three seeds. A change smaller than the spread is not an effect. Effects on
Stable Diffusion at full size may differ; the table is where to start, not a promise.

| knob | compared with | seeds | subject fidelity | prompt fidelity | class drift (mean) | class drift (worst prompt) | seconds |
|---|---|---|---|---|---|---|---|
"""

FOOTER = """
How to read it in a class: a row whose bracket is larger than both rows' spreads changed the
result; a row whose bracket is inside the spread did not, on this subject. `repeats` and
`num_train_epochs` only change how the step count is written (an epoch is every photo ×
repeats, or every class image if there are more: `dreamkit/core/steps.py`), so they are not
rows: set the same number of steps and the run is the same.
"""


if __name__ == "__main__":
    if sys.argv[1:2] == ["doc"]:
        doc()
    else:
        names = [list(KNOBS)[int(i)] for i in sys.argv[2].split(",")] \
            if len(sys.argv) > 2 and sys.argv[2] else list(KNOBS)
        seeds = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0, 1, 2]
        run(names, seeds, sys.argv[4] if len(sys.argv) > 4 else "")
