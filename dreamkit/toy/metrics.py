"""Exact measures of what DreamBooth promises, read from toy-world pictures by the oracle.

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

import torch

from .oracle import read_picture
from .world import CLASS_NOUN, COLOURS, CONTEXTS, IDENTIFIER, SHAPES, SIZE, SUBJECTS

__all__ = ["gini_simpson", "subject_prompts", "class_prompt", "generate_toy", "evaluate_toy",
           "evaluate_base", "evaluate_subjects", "EVAL_STEPS", "EVAL_GUIDANCE"]

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


@torch.no_grad()
def generate_toy(pipe, prompt: str, n: int, seed: int, batch: int = 16) -> list:
    """n pictures of `prompt`, picture k from seed + k (batched, same result)."""
    images = []
    for start in range(0, n, batch):
        k = range(start, min(n, start + batch))
        gens = [torch.Generator("cpu").manual_seed(seed + i) for i in k]
        images += pipe([prompt] * len(k), num_inference_steps=EVAL_STEPS,
                       guidance_scale=EVAL_GUIDANCE, generator=gens).images
    return images


def evaluate_toy(pipe, per_context: int = 6, n_class: int = 24, seed: int = 1000,
                 identifier: str = IDENTIFIER, return_images: bool = False) -> dict:
    """Subject fidelity, prompt fidelity, class drift and class diversity of a toy model."""
    pipe.set_progress_bar_config(disable=True)
    subject_reads, subject_images = [], []
    for ctx, prompt in subject_prompts(identifier).items():
        imgs = generate_toy(pipe, prompt, per_context, seed)
        subject_images += imgs
        subject_reads += [(read_picture(im), ctx) for im in imgs]
    class_images = generate_toy(pipe, class_prompt(), n_class, seed + 5000)
    class_reads = [read_picture(im) for im in class_images]
    result = {
        "subject_fidelity": _mean(r.is_subject for r, _ in subject_reads),
        "prompt_fidelity": _mean(r.context == ctx for r, ctx in subject_reads),
        "subject_colour_share": round(sum(r.counts[c] for r, _ in subject_reads
                                          for c in SUBJECTS[IDENTIFIER])
                                      / (len(subject_reads) * SIZE * SIZE), 4),
        "class_drift": _mean(r.is_subject for r in class_reads),
        "class_diversity": round(gini_simpson((r.colour, r.context) for r in class_reads), 3),
        "n_subject_samples": len(subject_reads), "n_class_samples": len(class_reads),
    }
    if return_images:
        return result, subject_images, class_images
    return result


def evaluate_subjects(pipe, identifiers=tuple(SUBJECTS), per_context: int = 6,
                      seed: int = 1000) -> dict:
    """Several subjects: for each identifier's prompts, which subjects the samples show.

    {identifier: {"shows": {subject: share of samples}, "colour_share": {subject: share of
    pixels in its two colours}, "prompt_fidelity": share with the right context}}. Each
    identifier's prompts should show its own subject and not the other one.
    """
    pipe.set_progress_bar_config(disable=True)
    out = {}
    for ident in identifiers:
        reads = [(read_picture(im), ctx) for ctx, prompt in subject_prompts(ident).items()
                 for im in generate_toy(pipe, prompt, per_context, seed)]
        n_pixels = len(reads) * SIZE * SIZE
        out[ident] = {
            "shows": {s: _mean(r.shows(s) for r, _ in reads) for s in SUBJECTS},
            "colour_share": {s: round(sum(r.counts[c] for r, _ in reads for c in SUBJECTS[s])
                                      / n_pixels, 4) for s in SUBJECTS},
            "prompt_fidelity": _mean(r.context == ctx for r, ctx in reads),
            "n_samples": len(reads)}
    return out


def evaluate_base(pipe, per_prompt: int = 2, seed: int = 2000) -> dict:
    """Does the base model draw the colour and context that full prompts name?"""
    pipe.set_progress_bar_config(disable=True)
    colour_ok, context_ok, subject = [], [], []
    for colour in COLOURS:
        for shape in SHAPES:
            for ctx, (phrase, _, _) in CONTEXTS.items():
                prompt = f"a photo of a {colour} {shape} {CLASS_NOUN} {phrase}"
                for im in generate_toy(pipe, prompt, per_prompt, seed):
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
