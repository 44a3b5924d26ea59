"""The toy world's scorer: the evaluation API (evaluate.py) with the oracle's exact answers.

Same keys as `evaluate.ModelScorer`, so the demo, the classroom notebook, the best-step rule
and scoring while training all use one interface; here each number is a share of pictures
the oracle read:

    subject_fidelity  share of subject-prompt pictures that show the subject
    prompt_fidelity   share of those whose context is the one the prompt names
    class_drift       share of class-prompt pictures that show the subject (the paper's PRES)
    class_diversity   Gini-Simpson index of the class pictures' (colour, context) labels

The toy plugs into the evaluation API, not the other way round: `choose_scorer` (for the
faces: CLI, notebooks) picks this scorer for models made from the toy base model.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import DreamkitError
from ..evaluation.evaluate import CLIP_ID, DINO_ID, ModelScorer, draw_samples, evaluate_pipeline
from ..outputs.sample import generate_many
from .assets import base_model_dir
from .metrics import (
    EVAL_GUIDANCE,
    EVAL_STEPS,
    _mean,
    class_prompt,
    gini_simpson,
    subject_prompts,
)
from .oracle import read_picture
from .world import CLASS_NOUN, COLOURS, CONTEXTS, IDENTIFIER, SIZE, SUBJECTS

__all__ = ["ToyScorer", "toy_prompts", "TOY_EVAL", "evaluate_toy", "evaluate_subjects",
           "choose_scorer", "drift_prompts", "class_drift_over_prompts", "DRIFT_PER_PROMPT"]

# How toy pictures are drawn for scoring (the same seeds and settings everywhere)
TOY_EVAL = dict(num_inference_steps=EVAL_STEPS, guidance_scale=EVAL_GUIDANCE)


def toy_prompts(identifier: str = IDENTIFIER) -> list[str]:
    return list(subject_prompts(identifier).values())


def _context(prompt: str) -> str | None:
    for ctx, (phrase, _, _) in CONTEXTS.items():
        if prompt.endswith(phrase):
            return ctx
    return None


class ToyScorer:
    """Scores toy-world pictures with the oracle; `Samples.real` is not needed."""

    needs_real_images = False
    sampling = TOY_EVAL  # fixed, whatever the run's sample settings

    def __init__(self, subject: str | None = None):
        # Which subject the photos showed (a key of SUBJECTS). None: the run's identifier if it
        # names one, else sks's disc. A classroom run may call sks's disc "qxv" (or even "zwx").
        if subject is not None and subject not in SUBJECTS:
            raise DreamkitError(f"subject={subject!r}: the toy world's subjects are "
                                f"{', '.join(SUBJECTS)}")
        self.subject = subject

    def prompts_for(self, identifier: str, class_noun: str, n: int | None = None) -> list[str]:
        return toy_prompts(identifier)[:n]

    def class_prompt_for(self, class_prompt_of_run: str) -> str:
        return class_prompt()  # "a photo of a toy": the prompt drift is measured on

    def score(self, s) -> dict:
        who = self.subject or (s.identifier if s.identifier in SUBJECTS else IDENTIFIER)
        reads = [(read_picture(im), _context(p)) for p, ims in s.subject.items() for im in ims]
        klass = [read_picture(im) for im in s.klass]
        placed = [(r, c) for r, c in reads if c is not None]
        pixels = max(1, len(reads) * SIZE * SIZE)
        shares = {name: round(sum(r.counts[c] for r, _ in reads for c in colours) / pixels, 4)
                  for name, colours in SUBJECTS.items()}
        return {"subject_fidelity": _mean(r.shows(who) for r, _ in reads),
                "prompt_fidelity": _mean(r.context == c for r, c in placed) if placed else None,
                "class_drift": _mean(r.shows(who) for r in klass),
                "class_diversity": round(gini_simpson((r.colour, r.context) for r in klass), 3),
                "subject_colour_share": shares[who],
                # which subjects the subject-prompt pictures show (several subjects in a run)
                "shows": {name: _mean(r.shows(name) for r, _ in reads) for name in SUBJECTS},
                "colour_shares": shares,
                "metric_names": {"subject_fidelity": "oracle: subject shown",
                                 "prompt_fidelity": "oracle: context right",
                                 "class_drift": "oracle: class shows subject",
                                 "class_diversity": "Gini-Simpson of colour x context"}}


DRIFT_PER_PROMPT = 12  # pictures per class prompt for the drift over prompts


def drift_prompts() -> dict:
    """Where learners look for the class: the plain class prompt, the class in every place
    and in every colour the world has. {label: prompt}."""
    out = {"plain": class_prompt()}
    out.update({c: f"{class_prompt()} {phrase}" for c, (phrase, _, _) in CONTEXTS.items()})
    out.update({c: f"a photo of a {c} {CLASS_NOUN}" for c in COLOURS})
    return out


def class_drift_over_prompts(pipe, who: str = IDENTIFIER, per_prompt: int = DRIFT_PER_PROMPT,
                             seed: int = 1000, plain=()) -> dict:
    """Class drift (share of class pictures that show the subject) on every drift prompt:
    {"by_prompt": {prompt: share}, "mean": .., "worst": .., "worst_prompt": ..}.

    `plain`: pictures of the plain class prompt already drawn at seeds seed + 5000, seed + 5001,
    ... with TOY_EVAL (evaluate_toy's class pictures); those are not drawn again."""
    pipe.set_progress_bar_config(disable=True)
    prompts = list(drift_prompts().values())
    known = {(class_prompt(), seed + 5000 + k): im for k, im in enumerate(plain[:per_prompt])}
    wanted = [(p, seed + 5000 + k) for p in prompts for k in range(per_prompt)]
    missing = [w for w in wanted if w not in known]
    known.update(zip(missing, generate_many(pipe, missing, at_least=per_prompt, **TOY_EVAL)))
    drawn = [known[w] for w in wanted]
    by = {p: _mean(read_picture(im).shows(who) for im in drawn[i * per_prompt:(i + 1) * per_prompt])
          for i, p in enumerate(prompts)}
    worst = max(by, key=by.get)
    return {"by_prompt": by, "mean": round(sum(by.values()) / len(by), 3),
            "worst": by[worst], "worst_prompt": worst}


def evaluate_toy(pipe, per_context: int = 6, n_class: int = 24, seed: int = 1000,
                 identifier: str = IDENTIFIER, subject: str | None = None,
                 over_prompts: bool = True) -> dict:
    """Subject fidelity, prompt fidelity, class drift and class diversity of a toy model, at
    fixed seeds (the demo's before and after). `subject`: see ToyScorer. `over_prompts`: also
    the class drift on every class prompt of drift_prompts() (mean, worst, each)."""
    drawn = draw_samples(pipe, toy_prompts(identifier), class_prompt(), identifier,
                         per_prompt=per_context, n_class=n_class, seed=seed, **TOY_EVAL)
    r = ToyScorer(subject).score(drawn)
    r.pop("metric_names")
    r = {**r, "n_subject_samples": per_context * len(CONTEXTS), "n_class_samples": n_class}
    if over_prompts:
        who = subject or (identifier if identifier in SUBJECTS else IDENTIFIER)
        # the plain class prompt's pictures at the same seeds are the class pictures above
        d = class_drift_over_prompts(pipe, who, seed=seed, plain=drawn.klass)
        r.update(class_drift_mean=d["mean"], class_drift_worst=d["worst"],
                 class_drift_worst_prompt=d["worst_prompt"], class_drift_by_prompt=d["by_prompt"])
    return r


def evaluate_subjects(pipe, identifiers=tuple(SUBJECTS), per_context: int = 6,
                      seed: int = 1000) -> dict:
    """Several subjects: for each identifier's prompts, which subjects the samples show.

    {identifier: {"shows": {subject: share of samples}, "colour_share": {subject: share of
    pixels in its two colours}, "prompt_fidelity": share with the right context}}. Each
    identifier's prompts should show its own subject and not the other one.
    """
    out = {}
    for ident in identifiers:
        r = evaluate_pipeline(pipe, ToyScorer(), toy_prompts(ident), class_prompt(), ident,
                              per_prompt=per_context, n_class=0, seed=seed, **TOY_EVAL)
        out[ident] = {"shows": r["shows"], "colour_share": r["colour_shares"],
                      "prompt_fidelity": r["prompt_fidelity"],
                      "n_samples": per_context * len(CONTEXTS)}
    return out


def choose_scorer(kind: str = "auto", model_path: str = "", dino: str | None = None,
                  clip: str | None = None):
    """'toy' (the oracle), 'models' (DINO + CLIP), or 'auto': the oracle for the toy base
    model (a run's base model path), DINO + CLIP for anything else."""
    if kind == "auto":
        toy = base_model_dir(required=False).resolve()
        same = bool(model_path) and Path(model_path).expanduser().resolve() == toy
        kind = "toy" if same else "models"
    if kind == "toy":
        return ToyScorer()
    if kind == "models":
        return ModelScorer(dino or DINO_ID, clip or CLIP_ID)
    raise DreamkitError(f"scorer={kind!r}: choose auto, toy or models")
