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

from ..core.callbacks import Callback
from ..core.config import TrainConfig
from ..core.errors import DreamkitError
from ..inputs.photos import find_images, open_image
from ..models.loading import load_pipeline
from ..models.lora import LORA_WEIGHTS, has_trained_model
from .evaluate import METRICS, evaluate_pipeline

# matplotlib: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["ScoreCallback", "choose_best", "plot_scores", "evaluate_run", "score_subjects",
           "real_photos", "sampling_for"]


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

    Every subject of the run is scored with its own prompts (the scorer's: a few of the
    paper's, or the toy world's four places), its class prompt and its photos; the curve's
    numbers are the subjects' means, each subject's own under "subjects" when there are
    several. `baseline`: scores of the base model (same prompts and seeds), for the rule.
    """

    def __init__(self, scorer, n_prompts: int = 4, per_prompt: int = 2, n_class: int = 8,
                 seed: int = 1000, baseline: dict | None = None, **sampling):
        self.scorer, self.n_prompts, self.per_prompt = scorer, n_prompts, per_prompt
        self.n_class, self.seed, self.baseline, self.sampling = n_class, seed, baseline, sampling
        self.curve, self.best, self.reason, self.path = [], None, "", None

    def on_train_start(self, config, step_mode, reason):
        self.concepts = config.resolved_concepts
        self.real = real_photos(self.scorer, self.concepts)
        self.path = Path(config.output_dir) / "scores.json"
        self.sampling = {**sampling_for(self.scorer, config), **self.sampling}

    def on_model(self, step, pipe):
        r = score_subjects(pipe, self.scorer, self.concepts, self.real, self.n_prompts,
                           self.per_prompt, self.n_class, self.seed, self.sampling)
        r.pop("metric_names", None)
        self.curve.append({"step": step, **r})
        self.best, self.reason = choose_best(self.curve, self.baseline)
        self._write()

    def on_train_end(self, result):
        if self.curve:  # the face shows `reason` (scores.json keeps it as "why")
            plot_scores(self.curve, self.baseline, self.path.with_suffix(".png"))

    def _write(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"baseline": self.baseline, "curve": self.curve,
                                         "best_step": self.best and self.best["step"],
                                         "why": self.reason}, indent=1) + "\n")


def real_photos(scorer, concepts) -> dict:
    """{identifier: the subject's photos} when the scorer compares with them, else empty."""
    if not scorer.needs_real_images:
        return {c.identifier: [] for c in concepts}
    return {c.identifier: [open_image(p) for p in find_images(c.instance_dir).images]
            if Path(c.instance_dir).is_dir() else [] for c in concepts}


def sampling_for(scorer, config) -> dict:
    """How the scored pictures are drawn: the scorer's fixed settings, else the run's."""
    return dict(scorer.sampling) if scorer.sampling else dict(
        num_inference_steps=config.sample_steps, guidance_scale=config.guidance_scale,
        resolution=config.resolution)


def score_subjects(pipe, scorer, concepts, real: dict, n_prompts, per_prompt: int,
                   n_class: int, seed: int, sampling: dict) -> dict:
    """Every subject scored at fixed seeds; the METRICS are the subjects' means, each
    subject's own numbers under "subjects" when there are several."""
    each = {}
    for c in concepts:
        prompts = scorer.prompts_for(c.identifier, c.class_noun, n_prompts)
        each[c.identifier] = evaluate_pipeline(
            pipe, scorer, prompts, scorer.class_prompt_for(c.class_prompt), c.identifier,
            real[c.identifier], per_prompt, n_class, seed, **sampling)
    first = next(iter(each.values()))
    if len(each) == 1:
        return first
    merged = {"metric_names": first.get("metric_names", {}), "subjects": each}
    for k in METRICS:
        values = [r[k] for r in each.values() if r.get(k) is not None]
        merged[k] = round(sum(values) / len(values), 4) if values else None
    return merged


def plot_scores(curve: list, baseline: dict | None = None, path=None):
    """The four measures over the steps (dotted: the base model)."""
    from matplotlib.figure import Figure  # matplotlib: heavy, imported when drawing
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


def evaluate_run(run_dir, scorer, prompts: int = 25, per_prompt: int = 2, n_class: int = 8,
                 seed: int = 1000, say=None) -> dict:
    """Score the base model and the fine-tuned run at the same seeds (every subject); write
    evaluation.json and evaluation.png into the run folder; return the report. `scorer`:
    evaluate.ModelScorer, or toy.scorer.ToyScorer (toy.scorer.choose_scorer picks one)."""
    run = Path(run_dir)
    if not (run / "config.json").is_file() or not has_trained_model(run):
        raise DreamkitError(f"{str(run)!r} is not a finished dreamkit run (config.json and "
                            f"model_index.json or {LORA_WEIGHTS} are missing); give a train "
                            f"output_dir")
    cfg = TrainConfig.load(run / "config.json")
    concepts = cfg.resolved_concepts
    sampling, real = sampling_for(scorer, cfg), real_photos(scorer, concepts)
    report = {"run": str(run), "base_model": cfg.pretrained_model_name_or_path,
              "scorer": type(scorer).__name__,
              "prompts": [p for c in concepts
                          for p in scorer.prompts_for(c.identifier, c.class_noun, prompts)],
              "per_prompt": per_prompt, "n_class": n_class, "seed": seed}
    for name, path in (("base", cfg.pretrained_model_name_or_path), ("fine_tuned", str(run))):
        if say is not None:  # progress, for a face that shows it
            say(f"scoring the {name.replace('_', '-')} model ...")
        r = score_subjects(load_pipeline(path), scorer, concepts, real, prompts, per_prompt,
                           n_class, seed, sampling)
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
    from matplotlib.figure import Figure  # matplotlib: heavy, imported when drawing
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
