"""Files written whole: flushed to disk and hashed while they are written.

A Colab session can end in the middle of a write; a file that was flushed (fsync) and whose
SHA-256 was recorded can later be told apart from a cut-off or damaged copy.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["Hashing", "sha256_of", "fsync_write"]


class Hashing:
    """A binary file that hashes what is written through it (SHA-256, while writing)."""

    def __init__(self, f):
        self.f, self.sha = f, hashlib.sha256()

    def write(self, data) -> int:
        self.sha.update(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def sha256_of(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            sha.update(block)
    return sha.hexdigest()


def fsync_write(path: Path, write) -> str:
    """Write, flush to disk; return the SHA-256 of what was written."""
    with open(path, "wb") as raw:
        f = Hashing(raw)
        write(f)
        raw.flush()
        os.fsync(raw.fileno())
    return f.sha.hexdigest()
