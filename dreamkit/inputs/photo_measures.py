"""What the dataset doctor measures in a picture: sharpness, blur, and a hash that finds the same
photo again after resizing or re-compression (thresholds and their calibration:
docs/data-doctor.md)."""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["sharpness", "blur_effect", "gradient_hash", "hash_distance", "FLAT_LEVELS"]

FLAT_LEVELS = 3  # a hash cell whose neighbours differ by less is flat (plain background): ignored


def sharpness(gray: np.ndarray) -> float:
    """Variance of the Laplacian: high for crisp edges, near 0 for a blurred picture."""
    a = gray.astype(np.float32)
    lap = -4 * a[1:-1, 1:-1] + a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:]
    return float(lap.var())


def blur_effect(gray: np.ndarray, h: int = 11) -> float:
    """Crete et al. (2007) no-reference blur: blur the picture again and see how much of its
    local variation survives. 0 = sharp, 1 = blurry; independent of how much texture there is."""
    a = gray.astype(np.float32)
    worst = 0.0
    for axis in (0, 1):
        kernel = np.ones(h, dtype=np.float32) / h
        again = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), axis, a)
        d = np.abs(np.diff(a, axis=axis))
        v = np.maximum(0, d - np.abs(np.diff(again, axis=axis)))
        total = d.sum()
        worst = max(worst, 1.0 if total == 0 else float((total - v.sum()) / total))
    return worst


def gradient_hash(img: Image.Image, n: int = 16) -> np.ndarray:
    """A difference hash (n×n): how each pixel of a 17×16 grey thumbnail compares with its left
    neighbour. Survives resizing, re-compression and brightness changes."""
    g = np.asarray(img.convert("L").resize((n + 1, n), Image.Resampling.LANCZOS), dtype=np.int16)
    return np.diff(g, axis=1)


def hash_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """Share of the cells where the two hashes point different ways, counting only cells that
    are not flat in both (two photos on one plain background would otherwise agree on all of
    it); None when fewer than 10% of cells have any edge (nothing to compare)."""
    informative = (np.abs(a) >= FLAT_LEVELS) | (np.abs(b) >= FLAT_LEVELS)
    if informative.mean() < 0.10:
        return None
    return float(((a > 0) != (b > 0))[informative].mean())
