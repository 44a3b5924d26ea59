"""Reading a toy-world picture back: which context, which colour, is it the subject?

The oracle knows the renderer's palette. Each pixel goes to the nearest palette colour (or to
none, when a blurred pixel is far from all of them); the context comes from the sky and ground
bands at the top and bottom edges (medians, so a toy overlapping them does not matter); the
toy's colour is the most common object colour; the subject is a picture with enough magenta
*and* enough cyan (the second subject, "zwx": orange and lime). Thresholds are low on purpose: generated pictures are blurrier than rendered
ones (MEASURED.md found a strict oracle under-counting blurry subjects).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .world import COLOURS, CONTEXTS, IDENTIFIER, SIZE, SUBJECT_COLOURS, SUBJECTS

__all__ = ["Reading", "read_picture", "MIN_SUBJECT_PIXELS"]

_NAMES, _RGB = [], []
for _ctx, (_, _sky, _ground) in CONTEXTS.items():
    _NAMES += [f"sky:{_ctx}", f"ground:{_ctx}"]
    _RGB += [_sky, _ground]
for _name, _rgb in {**COLOURS, **SUBJECT_COLOURS}.items():
    _NAMES.append(_name)
    _RGB.append(_rgb)
_PALETTE = np.array(_RGB, dtype=np.float32)
_OBJECT = [n for n in _NAMES if n in COLOURS or n in SUBJECT_COLOURS]
MAX_DISTANCE = 80.0  # a pixel further than this from every palette colour counts as none
MIN_SUBJECT_PIXELS = 20  # of each subject colour (a rendered subject half has >= 127)
MIN_OBJECT_PIXELS = 15


@dataclass
class Reading:
    context: str
    colour: str | None  # the toy's colour (red/blue/yellow), "subject", or None if no toy seen
    is_subject: bool  # the subject "sks" is in the picture
    counts: dict
    subjects: tuple = ()  # every subject (identifier) in the picture

    def shows(self, identifier: str) -> bool:
        return identifier in self.subjects


def read_picture(img) -> Reading:
    arr = np.asarray(img.convert("RGB").resize((SIZE, SIZE)), dtype=np.float32)
    band = max(3, SIZE // 10)
    top = np.median(arr[:band].reshape(-1, 3), axis=0)
    bottom = np.median(arr[-band:].reshape(-1, 3), axis=0)
    context = min(CONTEXTS, key=lambda c: np.linalg.norm(top - CONTEXTS[c][1])
                  + np.linalg.norm(bottom - CONTEXTS[c][2]))
    flat = arr.reshape(-1, 3)
    dist = np.linalg.norm(flat[:, None, :] - _PALETTE[None, :, :], axis=2)
    nearest = dist.argmin(axis=1)
    ok = dist.min(axis=1) <= MAX_DISTANCE
    counts = {n: int(((nearest == i) & ok).sum()) for i, n in enumerate(_NAMES) if n in _OBJECT}
    subjects = tuple(name for name, (a, b) in SUBJECTS.items()
                     if min(counts[a], counts[b]) >= MIN_SUBJECT_PIXELS)
    is_subject = IDENTIFIER in subjects
    if subjects:
        colour = "subject"
    else:
        best = max(COLOURS, key=lambda c: counts[c])
        colour = best if counts[best] >= MIN_OBJECT_PIXELS else None
    return Reading(context, colour, is_subject, counts, subjects)
