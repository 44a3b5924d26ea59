"""The toy world's scorer: the evaluation API (evaluate.py) with the oracle's exact answers.

Same keys as `evaluate.ModelScorer`, so the classroom notebook, the best-checkpoint rule and
the tests use one interface; here each number is a share of pictures the oracle read:

    subject_fidelity  share of subject-prompt pictures that show the subject
    prompt_fidelity   share of those whose context is the one the prompt names
    class_drift       share of class-prompt pictures that show the subject (the paper's PRES)
    class_diversity   Gini-Simpson index of the class pictures' (colour, context) labels
"""

from __future__ import annotations

from .metrics import EVAL_GUIDANCE, EVAL_STEPS, _mean, gini_simpson, subject_prompts
from .oracle import read_picture
from .world import CONTEXTS, IDENTIFIER, SIZE, SUBJECTS

__all__ = ["ToyScorer", "toy_prompts", "TOY_EVAL"]

# evaluate_pipeline settings that match toy.metrics.evaluate_toy (same seeds, same pictures)
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

    def score(self, s) -> dict:
        who = s.identifier if s.identifier in SUBJECTS else IDENTIFIER
        reads = [(read_picture(im), _context(p)) for p, ims in s.subject.items() for im in ims]
        klass = [read_picture(im) for im in s.klass]
        placed = [(r, c) for r, c in reads if c is not None]
        colours = SUBJECTS[who]
        return {"subject_fidelity": _mean(r.shows(who) for r, _ in reads),
                "prompt_fidelity": _mean(r.context == c for r, c in placed) if placed else None,
                "class_drift": _mean(r.shows(who) for r in klass),
                "class_diversity": round(gini_simpson((r.colour, r.context) for r in klass), 3),
                "subject_colour_share": round(sum(r.counts[c] for r, _ in reads for c in colours)
                                              / max(1, len(reads) * SIZE * SIZE), 4),
                "metric_names": {"subject_fidelity": "oracle: subject shown",
                                 "prompt_fidelity": "oracle: context right",
                                 "class_drift": "oracle: class shows subject",
                                 "class_diversity": "Gini-Simpson of colour x context"}}
