"""Scoring while training, and the rule that picks the best step.

`ScoreCallback(scorer)` scores the model every `sample_every` steps (and at the end) on a small
fixed-seed prompt set, keeps the curve in `output_dir/scores.json`, and when training ends says
which step is best and why. Sampling uses its own generators: the training run is the same
with or without it (tests/test_evaluate.py checks the weights bit for bit).

The rule (`choose_best`): too few steps and the subject is not learned, too many and the prompt
stops steering and the class drifts. So among the scored steps, keep those whose

    prompt fidelity >= the base model's - max_prompt_drop      (default 0.05)
    class drift     <= the base model's + max_drift_rise        (default 0.10)

and take the one with the highest subject fidelity (the earlier one on a tie: fewer steps,
less overfitting). Without a base-model score the first scored step stands in for it. If no
step passes, the one with the best prompt fidelity is named, with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path

from .callbacks import Callback
from .evaluate import evaluate_pipeline

__all__ = ["ScoreCallback", "choose_best", "plot_scores", "evaluate_run", "make_scorer"]


def choose_best(curve: list, baseline: dict | None = None, max_prompt_drop: float = 0.05,
                max_drift_rise: float = 0.10) -> tuple[dict | None, str]:
    """(the chosen entry of `curve`, a sentence saying why). Entries carry `step` and METRICS."""
    if not curve:
        return None, "nothing was scored"
    ref = baseline or curve[0]
    ref_name = "the base model" if baseline else f"step {curve[0]['step']}"
    pf_min = (ref.get("prompt_fidelity") or 0) - max_prompt_drop
    drift_max = ref["class_drift"] + max_drift_rise
    ok = [e for e in curve if (e.get("prompt_fidelity") is None or e["prompt_fidelity"] >= pf_min)
          and e["class_drift"] <= drift_max]
    if not ok:
        best = max(curve, key=lambda e: (e.get("prompt_fidelity") or 0, -e["step"]))
        return best, (f"no scored step keeps prompt fidelity >= {pf_min:.3f} and class drift <= "
                      f"{drift_max:.3f} ({ref_name} - {max_prompt_drop} / + {max_drift_rise}); "
                      f"step {best['step']} keeps the prompt best: fewer steps or a lower "
                      f"learning rate should help")
    best = max(ok, key=lambda e: (e["subject_fidelity"], -e["step"]))
    pf = best.get("prompt_fidelity")
    return best, (f"step {best['step']}: the highest subject fidelity "
                  f"({best['subject_fidelity']:.3f}) of the {len(ok)} of {len(curve)} scored "
                  f"steps whose prompt fidelity stays >= {pf_min:.3f}"
                  f"{f' (it has {pf:.3f})' if pf is not None else ''} and class drift <= "
                  f"{drift_max:.3f} (it has {best['class_drift']:.3f}), limits set from "
                  f"{ref_name}")


class ScoreCallback(Callback):
    """Score at every sample step; write scores.json; name the best step at the end.

    `prompts` default: a few of the paper's prompts (the toy world: its four places);
    `real_images` default: the run's photos
    (a ModelScorer needs them; the toy scorer does not). `baseline`: scores of the base model
    (same prompts and seeds), for the best-step rule.
    """

    def __init__(self, scorer, prompts=None, real_images=None, per_prompt: int = 2,
                 n_class: int = 8, seed: int = 1000, baseline: dict | None = None, **sampling):
        self.scorer, self.prompts, self.real = scorer, prompts, real_images
        self.per_prompt, self.n_class, self.seed = per_prompt, n_class, seed
        self.baseline, self.sampling = baseline, sampling
        self.curve, self.best, self.reason, self.path = [], None, "", None

    def on_train_start(self, config, step_mode, reason):
        from .data import find_images, open_image
        self.config = config
        concept = config.resolved_concepts[0]
        if not self.prompts:  # the toy world's four places, or the first of the paper's prompts
            if type(self.scorer).__name__ == "ToyScorer":
                from .toy.scorer import toy_prompts
                self.prompts = toy_prompts(concept.identifier)
            else:
                from .prompts import evaluation_prompts
                self.prompts = evaluation_prompts(concept.identifier, concept.class_noun, 4)
        if self.real is None:
            self.real = [open_image(p) for c in config.resolved_concepts
                         for p in find_images(c.instance_dir).images]
        self.path = Path(config.output_dir) / "scores.json"
        self.sampling.setdefault("num_inference_steps", config.sample_steps)
        self.sampling.setdefault("guidance_scale", config.guidance_scale)
        self.sampling.setdefault("resolution", config.resolution)

    def on_model(self, step, pipe):
        c = self.config
        r = evaluate_pipeline(pipe, self.scorer, self.prompts, c.resolved_concepts[0].class_prompt
                              or c.resolved_class_prompt, c.identifier, self.real,
                              self.per_prompt, self.n_class, self.seed, **self.sampling)
        r.pop("metric_names", None)
        self.curve.append({"step": step, **r})
        self.best, self.reason = choose_best(self.curve, self.baseline)
        self._write()

    def on_train_end(self, result):
        if self.curve:
            print(f"best step: {self.reason}")
            plot_scores(self.curve, self.baseline, self.path.with_suffix(".png"))

    def _write(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"baseline": self.baseline, "curve": self.curve,
                                         "best_step": self.best and self.best["step"],
                                         "why": self.reason}, indent=1) + "\n")


def plot_scores(curve: list, baseline: dict | None = None, path=None):
    """The four measures over the steps (dotted: the base model)."""
    from matplotlib.figure import Figure

    from .evaluate import METRICS
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    steps = [e["step"] for e in curve]
    for k, colour in zip(METRICS, ("tab:purple", "tab:green", "tab:red", "tab:gray")):
        ys = [e.get(k) for e in curve]
        if any(y is None for y in ys):
            continue
        ax.plot(steps, ys, marker="o", color=colour, label=k.replace("_", " "))
        if baseline and baseline.get(k) is not None:
            ax.axhline(baseline[k], color=colour, linestyle=":", linewidth=1)
    ax.set_xlabel("step")
    ax.set_title("scores while training (dotted: base model)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig


def make_scorer(kind: str, model_path: str = "", dino: str | None = None,
                clip: str | None = None):
    """'toy' (the oracle), 'models' (DINO + CLIP), or 'auto': toy for the toy base model."""
    from .errors import DreamkitError
    from .evaluate import CLIP_ID, DINO_ID, ModelScorer
    if kind == "auto":
        from .toy import base_model_dir
        toy = base_model_dir(required=False).resolve()
        kind = "toy" if model_path and Path(model_path).expanduser().resolve() == toy else "models"
    if kind == "toy":
        from .toy.scorer import ToyScorer
        return ToyScorer()
    if kind == "models":
        return ModelScorer(dino or DINO_ID, clip or CLIP_ID)
    raise DreamkitError(f"scorer={kind!r}: choose auto, toy or models")


def evaluate_run(run_dir, scorer: str = "auto", prompts: int = 25, per_prompt: int = 2,
                 n_class: int = 8, seed: int = 1000, dino: str | None = None,
                 clip: str | None = None, progress: bool = True) -> dict:
    """Score the base model and the fine-tuned run at the same seeds; write
    evaluation.json and evaluation.png into the run folder; return the report."""
    from .config import TrainConfig
    from .data import find_images, open_image
    from .errors import DreamkitError
    from .lora import LORA_WEIGHTS
    from .models import load_pipeline
    from .prompts import evaluation_prompts

    run = Path(run_dir)
    from .lora import has_trained_model
    if not (run / "config.json").is_file() or not has_trained_model(run):
        raise DreamkitError(f"{str(run)!r} is not a finished dreamkit run (config.json and "
                            f"model_index.json or {LORA_WEIGHTS} are missing); give a train "
                            f"output_dir")
    cfg = TrainConfig.load(run / "config.json")
    base_path = cfg.pretrained_model_name_or_path
    judge = make_scorer(scorer, base_path, dino, clip)
    concept = cfg.resolved_concepts[0]
    toy = type(judge).__name__ == "ToyScorer"
    if toy:
        from .toy.scorer import TOY_EVAL, toy_prompts
        asked, kw = toy_prompts(concept.identifier), dict(TOY_EVAL)
    else:
        asked = evaluation_prompts(concept.identifier, concept.class_noun, prompts)
        kw = dict(num_inference_steps=cfg.sample_steps, guidance_scale=cfg.guidance_scale,
                  resolution=cfg.resolution)
    real = [open_image(p) for p in find_images(concept.instance_dir).images] \
        if Path(concept.instance_dir).is_dir() else []
    report = {"run": str(run), "base_model": base_path, "scorer": type(judge).__name__,
              "prompts": asked, "per_prompt": per_prompt, "n_class": n_class, "seed": seed}
    for name, path in (("base", base_path), ("fine_tuned", str(run))):
        if progress:
            print(f"scoring the {name.replace('_', '-')} model ...")
        r = evaluate_pipeline(load_pipeline(path), judge, asked, concept.class_prompt,
                              concept.identifier, real, per_prompt, n_class, seed, **kw)
        report["metric_names"] = r.pop("metric_names", {})
        report[name] = r
    scores = run / "scores.json"
    if scores.is_file():
        curve = json.loads(scores.read_text()).get("curve", [])
        best, why = choose_best(curve, report["base"])
        report.update(curve=curve, best_step=best and best["step"], why=why)
    (run / "evaluation.json").write_text(json.dumps(report, indent=1) + "\n")
    _plot_report(report, run / "evaluation.png")
    return report


def _plot_report(report: dict, path) -> None:
    from matplotlib.figure import Figure

    from .evaluate import METRICS
    keys = [k for k in METRICS if report["base"].get(k) is not None]
    fig = Figure(figsize=(7, 3.5))
    ax = fig.add_subplot()
    xs = range(len(keys))
    for off, name, colour in ((-0.2, "base", "tab:gray"), (0.2, "fine_tuned", "tab:blue")):
        vals = [report[name][k] for k in keys]
        bars = ax.bar([x + off for x in xs], vals, width=0.4, color=colour,
                      label=name.replace("_", "-"))
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    names = report.get("metric_names", {})
    ax.set_xticks(list(xs), [f"{k.replace('_', ' ')}\n({names.get(k, '')})" for k in keys],
                  fontsize=7)
    ax.set_title(f"{report['scorer']}: base vs fine-tuned (same seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
