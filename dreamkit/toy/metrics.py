"""The toy world's prompts and measures, read from its pictures by the oracle.

The DreamBooth measures themselves come from the one scoring API (evaluate.evaluate_pipeline)
with the oracle as its scorer (toy/scorer.py: ToyScorer, evaluate_toy):

- subject fidelity: share of "a photo of sks toy <context>" samples that show the subject;
- prompt fidelity: share of those samples whose context is the one the prompt names;
- class drift: share of "a photo of a toy" samples that show the subject (the paper's PRES);
- subject colour share: the share of pixels in those samples that are magenta or cyan (a
  graded view of subject fidelity: it rises before whole subjects appear);
- class diversity: how varied the class samples stay, as the Gini-Simpson index of their
  (colour, context) labels: the chance that two samples differ (0 = all alike);
- base colour / context accuracy: the pretrained model draws what fully specified prompts ask.

All prompts use fixed seeds, so "before" and "after" differ only by the weights.
"""

from __future__ import annotations

from collections import Counter

from ..outputs.sample import generate_many
from .oracle import read_picture
from .world import CLASS_NOUN, COLOURS, CONTEXTS, IDENTIFIER, SHAPES

__all__ = ["gini_simpson", "subject_prompts", "class_prompt", "evaluate_base", "EVAL_STEPS",
           "EVAL_GUIDANCE"]

EVAL_STEPS = 20
EVAL_GUIDANCE = 4.0


def gini_simpson(labels) -> float:
    labels = list(labels)
    if not labels:
        return 0.0
    n = len(labels)
    return 1.0 - sum((c / n) ** 2 for c in Counter(labels).values())


def subject_prompts(identifier: str = IDENTIFIER) -> dict:
    """context -> 'a photo of sks toy on the beach', ..."""
    return {c: f"a photo of {identifier} {CLASS_NOUN} {phrase}"
            for c, (phrase, _, _) in CONTEXTS.items()}


def class_prompt() -> str:
    return f"a photo of a {CLASS_NOUN}"


def evaluate_base(pipe, per_prompt: int = 2, seed: int = 2000) -> dict:
    """Does the base model draw the colour and context that full prompts name? Every prompt's
    pictures use seeds seed, seed + 1, ... (drawn many at a time: outputs/sample.py)."""
    pipe.set_progress_bar_config(disable=True)
    wanted = [(f"a photo of a {colour} {shape} {CLASS_NOUN} {phrase}", colour, ctx, seed + k)
              for colour in COLOURS for shape in SHAPES
              for ctx, (phrase, _, _) in CONTEXTS.items() for k in range(per_prompt)]
    images = generate_many(pipe, [(w[0], w[3]) for w in wanted], num_inference_steps=EVAL_STEPS,
                           guidance_scale=EVAL_GUIDANCE)
    colour_ok, context_ok, subject = [], [], []
    for (_, colour, ctx, _), im in zip(wanted, images):
        r = read_picture(im)
        colour_ok.append(r.colour == colour)
        context_ok.append(r.context == ctx)
        subject.append(r.is_subject)
    both = [a and b for a, b in zip(colour_ok, context_ok)]
    return {"colour_accuracy": _mean(colour_ok), "context_accuracy": _mean(context_ok),
            "colour_and_context": _mean(both), "subject_share": _mean(subject),
            "n_samples": len(both)}


def _mean(xs) -> float:
    xs = list(xs)
    return round(sum(bool(x) for x in xs) / len(xs), 3) if xs else 0.0
