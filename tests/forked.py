"""Real `dreamkit` command processes without seconds of imports each: a helper process imports
the training stack once, then forks a child per command (tests/test_checkpoint.py kills them
with SIGKILL, fills their disk with `ulimit -f`).

A forked child is a process of its own running the command line's `main(argv)`, as
`python -m dreamkit` does after its imports; the kill, the lock it leaves and the resume are
the same. The helper forks from one thread (OMP_NUM_THREADS=1, nothing run before), so the
children start clean.

    with Forked(env) as forked:
        pid = forked.start(["train", "--config", path], log=tmp_path / "run.log")
        os.kill(pid, signal.SIGKILL)
        forked.wait(pid)  # -9; the child is gone (reaped), as a killed process is
"""

import json
import os
import subprocess
import sys
from pathlib import Path

HELPER = Path(__file__).resolve()


class Forked:
    def __init__(self, env: dict):
        self.proc = subprocess.Popen([sys.executable, str(HELPER)], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._ask({"do": "ready"})

    def _ask(self, request: dict):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the fork helper stopped (exit code {self.proc.wait()})")
        return json.loads(answer)

    def start(self, argv: list, log: Path, max_file_bytes: int | None = None) -> int:
        """The child's pid; its stdout and stderr go to `log`; `max_file_bytes`: `ulimit -f`."""
        return self._ask({"do": "start", "argv": [str(a) for a in argv], "log": str(log),
                          "limit": max_file_bytes})

    def wait(self, pid: int) -> int:
        """The child's exit code (-N when signal N ended it), once it has ended."""
        return self._ask({"do": "wait", "pid": pid})

    def poll(self, pid: int) -> int | None:
        """The child's exit code if it has ended (it is then gone), else None."""
        return self._ask({"do": "poll", "pid": pid})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _serve() -> None:
    import resource

    import torch

    # the imports a training run makes, made once (diffusers and transformers load a class
    # when it is first named)
    import importlib

    import diffusers
    import transformers
    for name in ("accelerate", "dreamkit.training.loop", "dreamkit.ui.commands"):
        importlib.import_module(name)
    (diffusers.UNet2DConditionModel, diffusers.AutoencoderKL, diffusers.StableDiffusionPipeline,
     transformers.CLIPTextModel, transformers.CLIPTokenizer)
    from dreamkit.ui.cli import main
    torch.set_num_threads(1)
    for line in sys.stdin:
        request = json.loads(line)
        if request["do"] == "start":
            pid = os.fork()
            if pid == 0:  # the child: the command, then out
                fd = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                if request["limit"]:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (request["limit"],) * 2)
                code = 1
                try:
                    code = main(request["argv"])
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code or 0)
            answer = pid
        elif request["do"] in ("wait", "poll"):
            done, status = os.waitpid(request["pid"], 0 if request["do"] == "wait" else os.WNOHANG)
            answer = os.waitstatus_to_exitcode(status) if done else None
        else:
            answer = "ready"
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    _serve()
