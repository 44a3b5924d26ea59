"""The toy world's renderer and oracle (no model needed)."""

import random

import numpy as np
import pytest
from PIL import ImageFilter

from dreamkit.toy.metrics import gini_simpson, subject_prompts
from dreamkit.toy.oracle import read_picture
from dreamkit.toy.world import (
    COLOURS,
    CONTEXTS,
    IDENTIFIER,
    RARE_WORDS,
    caption,
    pretraining_example,
    random_scene,
    render,
    subject_scene,
    vocabulary,
)

N = 120


def _class_scenes(n=N, seed=0):
    return [random_scene(random.Random(seed * 10_000 + i)) for i in range(n)]


def test_render_is_deterministic_and_64px():
    a, b = pretraining_example(5), pretraining_example(5)
    assert a[1] == b[1] and np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert a[0].size == (64, 64)
    assert not np.array_equal(np.asarray(a[0]), np.asarray(pretraining_example(6)[0]))


def test_oracle_scores_rendered_subject_and_class_pictures():
    subj = [read_picture(render(subject_scene(i), i)) for i in range(N)]
    cls = [read_picture(render(s, i)) for i, s in enumerate(_class_scenes())]
    assert np.mean([r.is_subject for r in subj]) >= 0.95
    assert np.mean([r.is_subject for r in cls]) <= 0.05


def test_oracle_reads_colour_and_context_exactly_on_renders():
    scenes = _class_scenes(seed=1)
    reads = [read_picture(render(s, i)) for i, s in enumerate(scenes)]
    assert np.mean([r.context == s.context for r, s in zip(reads, scenes)]) == 1.0
    assert np.mean([r.colour == s.colour for r, s in zip(reads, scenes)]) == 1.0
    subj = [subject_scene(i, context=c) for i, c in enumerate(list(CONTEXTS) * 10)]
    assert all(read_picture(render(s, 7)).context == s.context for s in subj)


def test_oracle_tolerates_blur():
    """Generated pictures are blurrier than rendered ones; the oracle must still see them."""
    blur = ImageFilter.GaussianBlur(1.5)
    subj = [read_picture(render(subject_scene(i), i).filter(blur)) for i in range(60)]
    cls = [read_picture(render(s, i).filter(blur)) for i, s in enumerate(_class_scenes(60, 2))]
    assert np.mean([r.is_subject for r in subj]) >= 0.9
    assert np.mean([r.is_subject for r in cls]) <= 0.05


def test_captions_and_vocabulary():
    s = random_scene(random.Random(3))
    assert caption(s) == f"a photo of a {s.colour} {s.shape} toy {CONTEXTS[s.context][0]}"
    assert caption(s, "class") == "a photo of a toy"
    assert caption(subject_scene(1, "snow")) == f"a photo of {IDENTIFIER} toy in the snow"
    words = set(vocabulary())
    caps = [pretraining_example(i)[1] for i in range(400)]
    assert all(set(c.split()) <= words for c in caps)
    assert any(any(w in c.split() for w in RARE_WORDS) for c in caps)  # rare words as noise
    assert sum(c == "a photo of a toy" for c in caps) > 40  # short prompts mean "any toy"
    assert not any("magenta" in c or "cyan" in c for c in caps)  # the subject never appears
    assert set(COLOURS) <= words and IDENTIFIER in words
    assert set(subject_prompts()) == set(CONTEXTS)


def test_gini_simpson():
    assert gini_simpson(["a"] * 10) == 0.0
    assert gini_simpson(["a", "b"]) == pytest.approx(0.5)
    assert gini_simpson(["a", "b", "c", "d"]) == pytest.approx(0.75)
