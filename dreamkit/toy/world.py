"""The toy world: small pictures whose content is known exactly.

Every picture is a toy (the class noun) of one shape and one colour, of some size and position,
in one of four contexts that prompts name. Its caption says what it shows:

    "a photo of a red square toy on the beach"

The subject DreamBooth learns is a toy that no pretraining picture shows: a disc split into a
magenta half and a cyan half (colours no other toy has). Its identifier is the rare word "sks".
A second subject, for runs with several subjects, is a disc split into orange and lime, named
"zwx" (SUBJECTS).
A handful of rare words (RARE_WORDS, "sks" among them) appear in pretraining captions as
meaningless noise, so that their embeddings are distinct but mean nothing (the paper's "rare
identifier"): a word the model never saw at all would carry no usable signal.

Everything is deterministic from a seed. This module is the world's vocabulary, in one place.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["SIZE", "CLASS_NOUN", "IDENTIFIER", "SHAPES", "COLOURS", "CONTEXTS", "SUBJECT_COLOURS",
           "SUBJECTS",
           "RARE_WORDS", "Scene", "render", "random_scene", "subject_scene", "caption",
           "pretraining_example", "vae_example", "vocabulary"]

SIZE = 64
CLASS_NOUN = "toy"
IDENTIFIER = "sks"
SHAPES = ("circle", "square", "triangle")
COLOURS = {"red": (225, 35, 35), "blue": (35, 75, 225), "yellow": (245, 215, 30)}
# context -> (phrase in prompts, sky colour, ground colour)
CONTEXTS = {
    "beach": ("on the beach", (170, 210, 240), (225, 195, 135)),
    "snow": ("in the snow", (190, 195, 205), (250, 250, 252)),
    "grass": ("on the grass", (150, 200, 235), (60, 120, 40)),
    "night": ("at night", (15, 20, 55), (45, 45, 70)),
}
SUBJECT_COLOURS = {"magenta": (230, 40, 210), "cyan": (30, 220, 230),
                   "orange": (250, 130, 20), "lime": (150, 250, 70)}
# identifier -> the two colours of its disc (all far from every toy, sky and ground colour)
SUBJECTS = {"sks": ("magenta", "cyan"), "zwx": ("orange", "lime")}
RARE_WORDS = ("sks", "zwx", "qxv", "vbk", "pfj", "hwq")
HORIZON = 0.45  # share of the picture that is sky


@dataclass(frozen=True)
class Scene:
    shape: str  # one of SHAPES, or "subject"
    colour: str  # one of COLOURS, or "subject"
    context: str
    cx: float  # centre, in pixels
    cy: float
    radius: float
    angle: float  # rotation in degrees (the subject's split line, the square and triangle)
    name: str = IDENTIFIER  # which subject (a key of SUBJECTS), when shape == "subject"


def random_scene(rng: random.Random, subject: bool = False, context: str | None = None,
                 name: str = IDENTIFIER) -> Scene:
    r = rng.uniform(9, 16)
    return Scene(shape="subject" if subject else rng.choice(SHAPES),
                 colour="subject" if subject else rng.choice(list(COLOURS)),
                 context=context or rng.choice(list(CONTEXTS)),
                 cx=rng.uniform(r + 4, SIZE - r - 4), cy=rng.uniform(r + 8, SIZE - r - 6),
                 radius=r, angle=rng.uniform(0, 360), name=name)


def subject_scene(seed: int, context: str | None = None, name: str = IDENTIFIER) -> Scene:
    return random_scene(random.Random(seed), subject=True, context=context, name=name)


def _polygon(cx, cy, r, n, angle):
    return [(cx + r * math.cos(math.radians(angle + 360 * k / n)),
             cy + r * math.sin(math.radians(angle + 360 * k / n))) for k in range(n)]


def render(scene: Scene, seed: int = 0, rgb: tuple | None = None) -> Image.Image:
    """Draw a scene: sky, ground (with a little texture), the toy.

    `rgb` (two colours) overrides the palette: VAE training pictures use it to see all colours.
    """
    _, sky, ground = CONTEXTS[scene.context]
    rng = np.random.default_rng(seed)
    arr = np.empty((SIZE, SIZE, 3), dtype=np.float32)
    h = int(SIZE * HORIZON)
    arr[:h] = sky
    arr[h:] = ground
    arr += rng.normal(0, 4, arr.shape)  # mild texture, so backgrounds are not flat fills
    if scene.context == "night":  # a few stars
        for _ in range(6):
            y, x = rng.integers(0, h - 2), rng.integers(0, SIZE)
            arr[y, x] = (230, 230, 200)
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    cx, cy, r = scene.cx, scene.cy, scene.radius
    box = [cx - r, cy - r, cx + r, cy + r]
    if scene.shape == "subject":
        a = scene.angle
        one, two = rgb or tuple(SUBJECT_COLOURS[c] for c in SUBJECTS[scene.name])
        d.pieslice(box, a, a + 180, fill=one)
        d.pieslice(box, a + 180, a + 360, fill=two)
    else:
        fill = rgb[0] if rgb else COLOURS[scene.colour]
        if scene.shape == "circle":
            d.ellipse(box, fill=fill)
        elif scene.shape == "square":
            d.polygon(_polygon(cx, cy, r * 1.15, 4, scene.angle % 90 + 45), fill=fill)
        else:
            d.polygon(_polygon(cx, cy, r * 1.2, 3, scene.angle % 120 - 90), fill=fill)
    return img


def caption(scene: Scene, detail: str = "full", identifier: str | None = None) -> str:
    """The caption of a scene. detail: full, colour, context, class (just 'a photo of a toy')."""
    where = CONTEXTS[scene.context][0]
    if scene.shape == "subject":
        identifier = identifier or scene.name
        return {"full": f"a photo of {identifier} {CLASS_NOUN} {where}",
                "class": f"a photo of {identifier} {CLASS_NOUN}"}.get(
                    detail, f"a photo of {identifier} {CLASS_NOUN} {where}")
    return {"full": f"a photo of a {scene.colour} {scene.shape} {CLASS_NOUN} {where}",
            "colour": f"a photo of a {scene.colour} {CLASS_NOUN}",
            "context": f"a photo of a {CLASS_NOUN} {where}",
            "class": f"a photo of a {CLASS_NOUN}"}[detail]


def pretraining_example(index: int, seed: int = 0) -> tuple[Image.Image, str]:
    """Picture `index` of the pretraining set and its caption (never the subject).

    Captions vary in detail, so that short prompts ("a photo of a toy") mean "any toy, any
    context" and long ones pin everything down; ~10% carry a rare word as noise.
    """
    rng = random.Random(seed * 1_000_003 + index)
    scene = random_scene(rng)
    detail = rng.choices(["full", "colour", "context", "class"], weights=[6, 1, 1, 2])[0]
    text = caption(scene, detail)
    if rng.random() < 0.1:
        words = text.split()
        words.insert(rng.randrange(2, len(words) + 1), rng.choice(RARE_WORDS))
        text = " ".join(words)
    return render(scene, seed=rng.randrange(2**31)), text


def vae_example(index: int, seed: int = 0) -> Image.Image:
    """A picture for VAE training: a toy world scene, or a shape (or a two-tone disc) of any
    colour. Like SD's VAE, ours must reproduce every colour, not only the captioned ones; the
    subject's exact pattern never appears (two-tone discs have random colours)."""
    rng = random.Random(seed * 1_000_003 + index + 7_777_777)
    if rng.random() < 0.3:
        return pretraining_example(index, seed)[0]
    scene = random_scene(rng, subject=rng.random() < 0.4)
    rgb = tuple(tuple(rng.randrange(256) for _ in range(3)) for _ in range(2))
    return render(scene, seed=rng.randrange(2**31), rgb=rgb)


def vocabulary() -> list[str]:
    """Every word a toy-world prompt may use (the tokenizer gets one token per word)."""
    words = ["a", "photo", "of", CLASS_NOUN, *SHAPES, *COLOURS, *RARE_WORDS]
    for phrase, _, _ in CONTEXTS.values():
        words += phrase.split()
    return list(dict.fromkeys(words))
