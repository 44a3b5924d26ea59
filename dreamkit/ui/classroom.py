"""The classroom notebook's controls: set a run with widgets, press Train, compare the runs.

    room = Classroom("classroom")
    room            # the panel: identifier, class prompt, steps, prior weight, text encoder, seed
    room.train()    # (or the Train button) one toy-world DreamBooth run with the panel's values
    room.compare()  # every run so far: a chart and a table

Each run trains the toy base model on the subject's twelve photos with exactly the panel's values
(`ConfigPanel`, checked as you type; the identifier against the toy model's tokenizer), shows
the progress bar, the live loss curves and the before/after grid, and adds a row to the
comparison below the panel: the four measures as a chart and a table, one line per run, so a
second run with other values lands beside the first without editing code.

`room.train(with_prior_preservation=False)` first sets those controls, as a learner would,
then trains: what the panel shows is what was used.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

from ..core.callbacks import ProgressBar
from ..core.errors import DreamkitError
from ..models.loading import load_tokenizer
from ..outputs.viewer import Picture, figure_image
from ..toy import base_model_dir
from ..toy.demo import demo_config, run_demo
from ..toy.report import compare_runs
from .live import LiveView
from .widgets import ConfigPanel

# IPython, ipywidgets: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["Classroom", "CLASSROOM_FIELDS", "run_label"]

# the lesson's controls; random_flip and noise_offset are two of the field's knobs whose effect
# a class can measure in a run each (docs/knobs.md)
CLASSROOM_FIELDS = ("identifier", "class_prompt", "max_train_steps", "with_prior_preservation",
                    "prior_loss_weight", "train_text_encoder", "random_flip", "noise_offset",
                    "seed")
# The toy demo's training steps on a 2-core CPU (`make demo`, three photos and three class
# images a step: 57.7 s for 500); the panel's time estimate uses it until a run here measures
# this machine
SECONDS_PER_STEP = 0.12
_MEASURES = ("subject_fidelity", "prompt_fidelity", "class_drift_mean", "class_drift_worst",
             "class_diversity")


def run_label(n: int, config) -> str:
    """'run 2: prior 1, text encoder on, 500 steps, seed 3, 'sks'' (what differs between runs)."""
    prior = f"prior {config.prior_loss_weight:g}" if config.with_prior_preservation else "no prior"
    te = "text encoder on" if config.train_text_encoder else "text encoder frozen"
    return (f"run {n}: {prior}, {te}, {config.max_train_steps} steps, seed {config.seed}, "
            f"'{config.identifier}'")


class Classroom:
    """A ConfigPanel over the demo's settings, a Train button, and a comparison of the runs."""

    def __init__(self, out="classroom", steps: int | None = None, seed: int = 0,
                 fields=CLASSROOM_FIELDS, **settings):
        """`steps`, `seed`: the panel's starting values; `settings`: other TrainConfig fields
        that every run of this classroom keeps (e.g. fewer class images for a quick test)."""
        import ipywidgets as w

        self.out = Path(out)
        start = demo_config(self.out, self.out / "photos", steps=steps, seed=seed)
        start = start.replace(**settings) if settings else start
        self.panel = ConfigPanel(start, fields=fields,
                                 tokenizer=load_tokenizer(str(base_model_dir())),
                                 seconds_per_step=SECONDS_PER_STEP)
        self.panel.run(self._clicked, description="Train")
        self.runs: list[dict] = []  # run_demo's summaries, with "label"
        self.view = w.Output()  # a button's run shows here
        # The comparison is a picture and a table set by value (no captured output), so it
        # updates the same way whether a run came from the button or from code
        self.chart, self.table_view = w.Image(format="png"), w.HTML("")
        self.widget = w.VBox([self.panel.widget, self.view,
                              w.HTML("<b>All runs so far</b>"), self.chart, self.table_view])

    def train(self, **changes) -> dict:
        """Set these controls (as a learner would), then train with the panel's values; the
        run's progress and pictures appear under the calling cell."""
        for name, value in changes.items():
            self.panel.set(name, value)
            if getattr(self.panel.config, name) != value:
                raise DreamkitError(self.panel.message(name) or f"{name}={value!r} was not taken")
        return self._run(self.panel.config)

    def compare(self):
        """The comparison of every run so far, here (it also updates under the panel)."""
        from IPython.display import HTML, display

        display(Picture(figure_image(compare_runs(self.chart_data()))))
        display(HTML(self.table()))

    def _clicked(self, config) -> None:
        """The Train button: the run shows under the panel, replacing the previous one."""
        self.view.clear_output()
        with self.view:
            self._run(config, in_widget=True)

    def _run(self, config, in_widget: bool = False) -> dict:
        from IPython.display import Image, display

        label = run_label(len(self.runs) + 1, config)
        print(label)
        summary = run_demo(self.out / f"run-{len(self.runs) + 1}", config=config,
                           overwrite=True,
                           callbacks=[ProgressBar(), LiveView(every=25, widget=in_widget)])
        print("upper rows: base model; lower rows: fine-tuned (same seeds)")
        display(Image(filename=summary["grid"], width=860))  # labels readable at this size
        trained = summary.get("seconds_by_stage", {}).get("training steps")
        if trained:  # this machine's speed, for the panel's estimate from now on
            self.panel.seconds_per_step = trained / config.max_train_steps
        summary["label"] = label
        self.runs.append(summary)
        png = io.BytesIO()
        figure_image(compare_runs(self.chart_data())).save(png, format="png")
        self.chart.value, self.table_view.value = png.getvalue(), self.table()
        return summary

    def chart_data(self) -> dict:
        """{label: measures}: the base model, then every run (what the chart shows)."""
        data = {"base model": self.runs[0]["before"]} if self.runs else {}
        data.update({r["label"].split(":")[0]: r["after"] for r in self.runs})
        return data

    def table(self) -> str:
        """The runs as an HTML table: settings and the four measures, one row per run."""
        head = "".join(f"<th>{k.replace('_', ' ')}</th>" for k in ("run",) + _MEASURES
                       + ("worst class prompt",))
        rows = [f"<tr><td>{html.escape(r['label'], quote=False)}</td>"
                + "".join(f"<td>{r['after'][k]:.2f}</td>" for k in _MEASURES)
                + f"<td>{html.escape(r['after']['class_drift_worst_prompt'])}</td></tr>"
                for r in self.runs]
        return f"<table><tr>{head}</tr>{''.join(rows)}</table>"

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)
