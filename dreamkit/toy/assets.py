"""The toy world's shipped files: the base model (package data, so a pip-installed dreamkit
has it too) and the subject's photos, rendered on demand."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import DreamkitError
from .world import CONTEXTS, IDENTIFIER, SUBJECTS, render, subject_scene

__all__ = ["ASSETS", "base_model_dir", "subject_photos_dir", "write_subject_photos",
           "SUBJECT_SEEDS"]

ASSETS = Path(__file__).resolve().parent  # dreamkit/toy: the base model ships inside the package
# Twelve poses of the subject, three in each context: the "photos" users bring. With five (one
# per context, two on the beach) the subject was learned on some training seeds and not others
# (subject fidelity 0.42-0.92 over five seeds): a context seen once was learned or not by chance
# (night most often failed). Three per context: 0.83-1.0 (benchmarks/RESULTS.md).
_CONTEXT_ORDER = ("beach", "snow", "grass", "night")
SUBJECT_SEEDS = {f"{_CONTEXT_ORDER[i % 4]}{i}": 11 + i for i in range(12)}


def base_model_dir(required: bool = True) -> Path:
    path = ASSETS / "base-model"
    if required and not (path / "model_index.json").exists():
        raise DreamkitError(f"the toy base model is missing at {path}; reinstall dreamkit (it "
                            f"ships inside the package), or rebuild it with `dreamkit toy "
                            f"pretrain --out {path}`")
    return path


def subject_photos_dir() -> Path:
    return ASSETS / "subject"


def write_subject_photos(folder, captions: bool = True, identifier: str = IDENTIFIER
                         ) -> list[Path]:
    """Render the subject's photos (deterministic) into `folder`.

    `identifier` picks the subject (a key of world.SUBJECTS: "sks", or "zwx" for a second one).
    With `captions` (the default), each photo gets a .txt caption naming its context ("a photo
    of {token} {class} on the beach"), so fine-tuning can leave the background to the context
    words instead of learning "beach" as part of the subject.
    """
    if identifier not in SUBJECTS:
        raise DreamkitError(f"identifier={identifier!r}: the toy world's subjects are "
                            f"{', '.join(SUBJECTS)}")
    offset = 10 * list(SUBJECTS).index(identifier)  # other poses for the other subject
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, seed in SUBJECT_SEEDS.items():
        ctx = name.rstrip("0123456789")
        assert ctx in CONTEXTS  # internal table, not user input
        path = folder / f"{identifier}_toy_{name}.png"
        seed += offset
        render(subject_scene(seed, context=ctx, name=identifier), seed=seed).save(path)
        if captions:
            phrase = CONTEXTS[ctx][0]
            path.with_suffix(".txt").write_text(f"a photo of {{token}} {{class}} {phrase}\n")
        paths.append(path)
    return paths
