"""Results kept by what they depend on: worked out once, then read back (in this process, and
from DREAMKIT_CACHE, default ~/.cache/dreamkit, in the next).

A result that fixed inputs always give (a plan of a model's step, a base model's measures and
pictures at fixed seeds) is keyed by a hash of those inputs, the code that computes it and the
library versions, so a changed input or an upgrade works it out anew. A damaged or unreadable
file is worked out again; a folder that cannot be written only costs the next run its time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["cache_dir", "key_of", "fingerprint", "kept"]

_MEMO: dict = {}
_PACKAGE = Path(__file__).resolve().parents[1]


def cache_dir(kind: str) -> Path:
    return Path(os.environ.get("DREAMKIT_CACHE") or Path.home() / ".cache" / "dreamkit") / kind


def fingerprint(path) -> str:
    """A local folder's or file's contents (what is in it, hashed); anything else, its name."""
    path = Path(str(path)).expanduser()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else \
        [path] if path.is_file() else []
    if not files:
        return str(path)
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def key_of(what: dict, code: tuple) -> str:
    """The hash of `what`, the package files in `code` (their text) and the library versions."""
    import diffusers
    import torch
    h = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode())
    for f in code:
        h.update((_PACKAGE / f).read_bytes())
    h.update(f"{torch.__version__} {diffusers.__version__}".encode())
    return h.hexdigest()


def kept(kind: str, key: str, make, *, on_disk=lambda value: True, accept=lambda value: True):
    """make() once per key: from memory, else from the JSON file of the key, else made (and
    written where on_disk(value)). `accept(value)` may refuse a kept value (made again)."""
    value = _MEMO.get((kind, key))
    path = cache_dir(kind) / f"{key}.json"
    if value is None and path.is_file():
        try:
            value = json.loads(path.read_text())
        except (OSError, ValueError):
            value = None  # damaged: made again and replaced
    if value is None or not accept(value):
        value = make()
        if on_disk(value):
            _write(path, value)
    _MEMO[(kind, key)] = value
    return value


def _write(path: Path, value) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value))
        tmp.replace(path)  # atomic: two processes at once each write a whole file
    except OSError:
        pass
