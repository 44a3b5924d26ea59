"""How long the README's two commands take in a fresh clone: `make test` beside `make demo`.

    python benchmarks/suite_time.py [--keep]

Clones this checkout's HEAD into a temporary folder, runs `make setup` (the set-up `make test`
does on first use), `make test` (CI=true, no stdin, as .ci/run) and `make demo` twice, and
writes the seconds, the CPU seconds and the suite's length in demos to
benchmarks/suite_time.json. Figures are only worth keeping with nothing else running on the
machine; the demo beside the suite says how fast the machine was that hour.
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _timed(cmd: list, cwd: Path, log: Path) -> dict:
    """Wall and CPU seconds (the command's children, user + system) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.time()
    with log.open("w") as out:
        code = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env={**os.environ, "CI": "true"}).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"seconds": round(time.time() - t0, 1), "exit_code": code,
            "cpu_seconds": round(after.ru_utime - before.ru_utime
                                 + after.ru_stime - before.ru_stime, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep", action="store_true", help="keep the clone (its path is printed)")
    args = p.parse_args()
    busy = os.getloadavg()[0]
    if busy > 0.5:
        print(f"note: load average {busy:.1f}: something else is running, the figures will be "
              f"slow", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="dreamkit-suite-"))
    clone = work / "dreamkit"
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                          capture_output=True, check=True).stdout.strip()
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    if (ROOT.parent / "shared").is_dir():  # the real photos' tests look beside the checkout
        (work / "shared").symlink_to(ROOT.parent / "shared")
    result = {"commit": head, "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M")}
    try:
        for name, cmd in (("setup", ["make", "setup"]), ("test", ["make", "test"]),
                          ("demo_1", ["make", "demo"]), ("demo_2", ["make", "demo"])):
            result[name] = _timed(cmd, clone, work / f"{name}.log")
            print(name, result[name], flush=True)
            if result[name]["exit_code"]:
                print((work / f"{name}.log").read_text()[-3000:], file=sys.stderr)
                return 1
        said = (work / "test.log").read_text()
        result["tests_passed"] = int(re.findall(r"(\d+) passed", said)[-1])
        result["tests_skipped"] = sum(map(int, re.findall(r"(\d+) skipped", said)[-1:]))
        result["pytest_seconds"] = float(re.findall(r" in ([\d.]+)s", said)[-1])
        demo = (result["demo_1"]["seconds"] + result["demo_2"]["seconds"]) / 2
        result["suite_in_demos"] = round(result["pytest_seconds"] / demo, 2)
        result["six_minutes_in_demos"] = round(360 / demo, 2)
    finally:
        if args.keep:
            print(f"the clone: {clone}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "benchmarks" / "suite_time.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
