"""dreamkit against diffusers' own DreamBooth script, side by side, on the same run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/peer.py PEER_SCRIPT [--steps 10,400]
        [--rounds 3] [--out peer.json]

PEER_SCRIPT: diffusers' `examples/dreambooth/train_dreambooth.py` (not in the pip package: give
a checkout's path). Both train the toy base model on the toy subject's photos (PNGs only, the
same instance prompt, no captions), with prior preservation on the same 10 class images (made
once beforehand, so neither draws any), 64 px, batch 1, fp32, one thread, no checkpoints, for
each step count; the runs alternate (peer, dreamkit, peer, ...) and each figure is the median
over the rounds, after one uncounted first run of each (reported apart). End to end: the whole process, start to exit. Per step: the slope between the
two step counts ((t(400) − t(10)) / 390), which leaves the fixed costs out for both; it needs
hundreds of steps between them, since single runs vary by about a second here (a 10 → 40 slope
was noise). 400 steps is the length of diffusers' own DreamBooth example. Neither
draws samples (the peer has no validation prompt; dreamkit num_sample_images=0); dreamkit keeps
its default checks (photos, identifier, sizes, free disk); both save the pipeline. Where torchvision cannot be imported
(this repository's CPU torch has none that loads), the script's five transforms are given by
benchmarks/peer_transforms.py, which does what torchvision's do.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROMPT, CLASS_PROMPT = "a photo of sks toy", "a photo of a toy"

# runs the peer script with torchvision's transforms stood in when torchvision cannot load
WRAPPER = """
import importlib.util, runpy, sys, types
try:
    import torchvision.transforms  # noqa: F401
except Exception:
    import transformers, diffusers.models, diffusers.loaders  # noqa: F401 (their checks first)
    from transformers.utils import is_torchvision_available
    is_torchvision_available()
    spec = importlib.util.spec_from_file_location("torchvision.transforms", sys.argv[1])
    tf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tf)
    tv = types.ModuleType("torchvision")
    tv.transforms = tf
    sys.modules["torchvision"], sys.modules["torchvision.transforms"] = tv, tf
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _prepare(root: Path, model: str) -> tuple[Path, Path]:
    """The photos (PNGs only: the peer reads every file as an image) and 10 class images."""
    from dreamkit.toy import write_subject_photos
    photos, classes = root / "photos", root / "classes"
    for p in write_subject_photos(root / "with_captions"):
        if p.suffix == ".png":
            photos.mkdir(exist_ok=True)
            shutil.copy(p, photos / p.name)
    env = _env()
    subprocess.run([sys.executable, "-m", "dreamkit", "class-images",
                    "--pretrained_model_name_or_path", model, "--instance_dir", str(photos),
                    "--class_prompt", CLASS_PROMPT, "--class_noun", "toy", "--class_dir",
                    str(classes), "--num_class_images", "10", "--with_prior_preservation",
                    "--resolution", "64"], check=True, env=env, capture_output=True)
    for txt in classes.glob("*.txt"):  # the peer would read them as images
        txt.unlink()
    return photos, classes


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def peer_argv(script: Path, model: str, photos: Path, classes: Path, out: Path,
              steps: int) -> list:
    return [sys.executable, "-c", WRAPPER, str(HERE / "peer_transforms.py"), str(script),
            "--pretrained_model_name_or_path", model, "--instance_data_dir", str(photos),
            "--class_data_dir", str(classes), "--with_prior_preservation",
            "--instance_prompt", PROMPT, "--class_prompt", CLASS_PROMPT,
            "--num_class_images", "10", "--resolution", "64", "--train_batch_size", "1",
            "--max_train_steps", str(steps), "--learning_rate", "2e-4", "--output_dir", str(out),
            "--mixed_precision", "no", "--seed", "0", "--checkpointing_steps", "1000000"]


def dreamkit_argv(model: str, photos: Path, classes: Path, out: Path, steps: int) -> list:
    return [sys.executable, "-m", "dreamkit", "train", "--pretrained_model_name_or_path", model,
            "--instance_dir", str(photos), "--class_dir", str(classes),
            "--with_prior_preservation", "--instance_prompt", PROMPT, "--class_prompt",
            CLASS_PROMPT, "--num_class_images", "10", "--resolution", "64",
            "--train_batch_size", "1", "--max_train_steps", str(steps), "--learning_rate",
            "2e-4", "--output_dir", str(out), "--seed", "0", "--checkpointing_steps", "0",
            "--use_captions", "false", "--num_sample_images", "0", "--overwrite"]


def _timed(argv: list, cwd: Path) -> float:
    t = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{argv[1:4]} failed:\n{r.stderr[-3000:]}")
    return seconds


def main(script: Path, steps=(10, 400), rounds: int = 3, model: str | None = None) -> dict:
    from dreamkit.toy import base_model_dir
    model = model or str(base_model_dir())
    times: dict = {"peer": {s: [] for s in steps}, "dreamkit": {s: [] for s in steps}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos, classes = _prepare(root, model)
        # a first run of each, not counted: dreamkit keeps its memory plan (planning/
        # plancache.py) and both warm the file cache; its time is reported apart
        first = {}
        for who in ("peer", "dreamkit"):
            out = root / f"{who}-first"
            argv = peer_argv(script, model, photos, classes, out, min(steps)) \
                if who == "peer" else dreamkit_argv(model, photos, classes, out, min(steps))
            first[who] = _timed(argv, root)
            print(f"first run {who:8} {min(steps):3} steps: {first[who]:.1f} s", flush=True)
            shutil.rmtree(out, ignore_errors=True)
        for r in range(rounds):
            for s in steps:
                for who in ("peer", "dreamkit"):  # alternated: drift hits both alike
                    out = root / f"{who}-{s}-{r}"
                    argv = peer_argv(script, model, photos, classes, out, s) if who == "peer" \
                        else dreamkit_argv(model, photos, classes, out, s)
                    times[who][s].append(_timed(argv, root))
                    print(f"round {r} {who:8} {s:3} steps: {times[who][s][-1]:.1f} s",
                          flush=True)
                    shutil.rmtree(out, ignore_errors=True)
    med = {who: {s: statistics.median(v) for s, v in by.items()} for who, by in times.items()}
    lo, hi = min(steps), max(steps)
    per_step = {who: (m[hi] - m[lo]) / (hi - lo) for who, m in med.items()}
    result = {"steps": list(steps), "rounds": rounds, "first_run": first, "seconds": times,
              "median": med,
              "per_step": per_step,
              "speedup_per_step": per_step["peer"] / per_step["dreamkit"],
              "speedup_end_to_end": {s: med["peer"][s] / med["dreamkit"][s] for s in steps}}
    print(f"per step: peer {per_step['peer']:.3f} s, dreamkit {per_step['dreamkit']:.3f} s "
          f"({result['speedup_per_step']:.2f}x)")
    for s in steps:
        print(f"{s} steps end to end: peer {med['peer'][s]:.1f} s, dreamkit "
              f"{med['dreamkit'][s]:.1f} s ({result['speedup_end_to_end'][s]:.2f}x)")
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("peer", type=Path, help="diffusers' examples/dreambooth/train_dreambooth.py")
    ap.add_argument("--steps", default="10,400")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "peer.json")
    a = ap.parse_args()
    if not a.peer.is_file():
        raise SystemExit(f"{a.peer}: no such file; give the path of diffusers' "
                         f"examples/dreambooth/train_dreambooth.py (a checkout of diffusers)")
    res = main(a.peer, tuple(int(x) for x in a.steps.split(",")), a.rounds)
    a.out.write_text(json.dumps(res, indent=1) + "\n")
