"""The random-number generators' states (torch, CUDA, numpy, python), saved with a checkpoint
and put back on resume, so that a resumed run draws the same noise, timesteps and data order as
one that never stopped. Stored as tensors and numbers only, so `torch.load(weights_only=True)`
reads them back."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["rng_state", "restore_rng"]


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": _python_state(),
             "numpy": _numpy_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((int(version), tuple(int(x) for x in internal.tolist()), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss),
                         float(cached)))


def _python_state():
    version, internal, gauss = random.getstate()
    # As a tensor of int64 (values < 2**32), so weights_only loading accepts it.
    return version, torch.tensor(internal, dtype=torch.int64), gauss


def _numpy_state():
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)
