"""One training run per folder.

A Colab cell run twice, or two browser tabs on one runtime, would start two runs in one output
folder; both would write checkpoints and a model, mixed. So a run holds a lock file in its
folder: created atomically (O_EXCL), holding the process id, the machine and the start time,
and removed when the run ends, however it ends. A second run finds it and is refused in one line
naming the first. A lock left by a killed run (kill -9, a disconnect) names a process that is
gone: it is taken over with a message, so resuming after a crash needs nothing from the user.

"Gone" is decided on the same machine by asking the system for the process (and its start time,
since process ids are reused). A lock from another machine (a Drive folder shared by two Colab
sessions) cannot be asked: the running holder touches the file every minute, so a lock untouched
for STALE_AFTER_S is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from ..core.callbacks import warn
from ..core.errors import DreamkitError

__all__ = ["LOCK_NAME", "run_lock", "heartbeat", "lock_holder", "STALE_AFTER_S"]

LOCK_NAME = ".dreamkit-run.lock"
HEARTBEAT_S = 60  # how often a running holder touches its lock
STALE_AFTER_S = 10 * 60  # a lock of another machine untouched this long is taken over
_HELD: dict = {}  # lock path -> last touch (time.time()), for the locks this process holds


def _started(pid: int) -> str | None:
    """When process `pid` started, in the system's ticks since boot (Linux), to tell a reused
    process id from the holder; None where the system does not say."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(holder: dict, path: Path) -> bool:
    if not holder.get("pid"):
        return False  # half-written by a run killed while making it
    if holder.get("host") != socket.gethostname():
        try:
            return time.time() - path.stat().st_mtime < STALE_AFTER_S
        except FileNotFoundError:
            return False  # released between reading and looking
    pid = holder.get("pid")
    if pid == os.getpid():
        return str(path) in _HELD  # this process: held only while its run is on
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:  # another user's process with that id: alive
        return True
    return holder.get("started") in (None, _started(int(pid)))


def lock_holder(folder) -> dict | None:
    """What the lock in `folder` says (pid, host, started, since), or None if there is none."""
    try:
        data = json.loads((Path(folder) / LOCK_NAME).read_text())
        return data if isinstance(data, dict) else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # half-written by a run killed while creating it


@contextmanager
def run_lock(folder, setting: str = "output_dir", report=warn):
    """Hold `folder`'s run lock for the `with` block; refuse if a live run holds it."""
    folder = Path(folder)
    path = folder / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _started(os.getpid()),
          "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(3):  # a stale lock removed, then ours made: a race with another taker ends
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = lock_holder(folder)
            if holder is None:
                continue  # released just now
            if _alive(holder, path):
                where = "this process" if holder.get("pid") == os.getpid() else \
                    f"process {holder.get('pid')} on {holder.get('host')}"
                raise DreamkitError(
                    f"{setting}={str(folder)!r} is in use by another training run ({where}, "
                    f"since {holder.get('since', '?')}); wait for it to end or stop it, or "
                    f"choose another {setting} (two runs in one folder would mix their "
                    f"checkpoints)") from None
            report(f"taking over {path.name} of a run that is gone (process "
                   f"{holder.get('pid', '?')} on {holder.get('host', '?')}, since "
                   f"{holder.get('since', '?')}): it was stopped without ending")
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    else:
        raise DreamkitError(f"{setting}={str(folder)!r}: another run keeps taking its lock; "
                            f"stop the other runs, or choose another {setting}")
    _HELD[str(path)] = time.time()
    try:
        yield path
    finally:
        _HELD.pop(str(path), None)
        if (lock_holder(folder) or {}).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)


def heartbeat(folder) -> None:
    """Touch the lock now and then while the run is on, so other machines see it is alive."""
    path = str(Path(folder) / LOCK_NAME)
    if path in _HELD and time.time() - _HELD[path] >= HEARTBEAT_S:
        _HELD[path] = time.time()
        try:
            os.utime(path)
        except OSError:
            pass  # a folder that vanished: the next checkpoint write says so
