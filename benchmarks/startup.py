"""How long `dreamkit train` takes to start: process start to the first training step.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/startup.py [--runs 5] [--repo DIR ...]

The run of benchmarks/peer.py (toy model, 12 photos, prior preservation on 10 class images made
beforehand, 64 px, one thread, 10 steps, no samples), started `--runs` times as a fresh process
from each `--repo` in turn (checkouts: an older commit's `git worktree` and this one, alternated;
an older dreamkit that cannot skip samples draws its default grid at the end). Prints, per
run and as medians, when the progress bar first shows (every check, the model loaded, the class
images found, latents cached: the step loop begins) and when the process exits.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peer  # noqa: E402  (the same run and environment as the side-by-side)


def timed_start(argv: list, cwd: Path) -> tuple[float, float]:
    """(seconds to the progress bar's first line, seconds to exit) of one process."""
    t0, first, seen = time.perf_counter(), None, b""
    p = subprocess.Popen(argv, cwd=cwd, env=peer._env(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    while chunk := p.stderr.read1(4096):
        seen = (seen + chunk)[-4096:]
        if first is None and re.search(rb"\| 0/\d+ ", seen):
            first = time.perf_counter() - t0
    if p.wait() != 0 or first is None:
        raise SystemExit(f"the run failed or showed no progress bar:\n{seen.decode()[-2000:]}")
    return first, time.perf_counter() - t0


def _argv_for(repo: Path, argv: list) -> list:
    """The run's command line as `repo`'s dreamkit takes it (an older one cannot skip samples)."""
    check = subprocess.run(argv[:3] + ["train", "--help"], cwd=repo, env=peer._env(),
                           capture_output=True, text=True)
    if "0 = no" in " ".join(check.stdout.split()):
        return argv
    print(f"({repo}: this dreamkit cannot skip the sample grid; its default grid is drawn)")
    i = argv.index("--num_sample_images")
    return argv[:i] + argv[i + 2:]


def main(runs: int, repos: list) -> None:
    from dreamkit.toy import base_model_dir
    model = str(base_model_dir())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        photos, classes = peer._prepare(root, model)
        argv = peer.dreamkit_argv(model, photos, classes, root / "out", 10)
        argvs = {repo: _argv_for(repo, argv) for repo in repos}
        times = {repo: ([], []) for repo in repos}
        for _ in range(runs):
            for repo in repos:  # alternated: drift on the machine hits each alike
                first, end = timed_start(argvs[repo], repo)
                times[repo][0].append(first)
                times[repo][1].append(end)
                print(f"{repo}: first step at {first:.2f} s, exit at {end:.2f} s", flush=True)
    for repo, (firsts, exits) in times.items():
        print(f"{repo}: median of {runs}: first step at {statistics.median(firsts):.2f} s, "
              f"exit at {statistics.median(exits):.2f} s")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--repo", type=Path, action="append",
                    help="a checkout to time (repeat to alternate several; default: this one)")
    a = ap.parse_args()
    main(a.runs, [r.resolve() for r in a.repo or [Path(__file__).resolve().parents[1]]])
