"""Notebook controls bound to TrainConfig, with messages next to the controls.

`ConfigPanel(config)` shows one control per chosen setting (its `why` as the tooltip). Each
change is checked at once by TrainConfig's own validation; a bad value shows the same one-line
message the CLI prints, under the control that caused it, and the panel keeps the last good
config. `panel.run(fn)` is the button that starts a step: any DreamkitError from it is shown
in the panel, not as a traceback.

With `tokenizer=` (the base model's), the identifier is checked as you type (tokens.py): a
word that splits into several tokens or has a meaning gets an orange note with rare
alternatives. "Add a subject" adds a row (photos folder, identifier, class noun) for a run with
several subjects (TrainConfig.concepts).
"""

from __future__ import annotations

import dataclasses
import html

from .config import DEFAULT_PRIOR_LOSS_WEIGHT, TrainConfig, knob_help
from .errors import ConfigError, DreamkitError
from .tokens import check_identifier

# IPython, ipywidgets: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["ConfigPanel", "DEFAULT_FIELDS"]

DEFAULT_FIELDS = ("identifier", "class_noun", "instance_prompt", "class_prompt",
                  "max_train_steps", "with_prior_preservation", "prior_loss_weight",
                  "num_class_images", "learning_rate", "resolution", "step_mode")


class ConfigPanel:
    """Controls for some TrainConfig fields; `.config` is always a valid TrainConfig."""

    def __init__(self, config: TrainConfig | None = None, fields=DEFAULT_FIELDS,
                 tokenizer=None):
        import ipywidgets as w

        self._w = w
        self.tokenizer = tokenizer
        self.config = config or TrainConfig()
        self.controls, self.messages = {}, {}
        meta = {f.name: f for f in dataclasses.fields(TrainConfig)}
        rows = []
        for name in fields:
            value = getattr(self.config, name)
            common = dict(value=value, description=name, tooltip=knob_help(name),
                          style={"description_width": "160px"},
                          layout=w.Layout(width="520px"))
            if "choices" in meta[name].metadata:
                ctl = w.Dropdown(options=list(meta[name].metadata["choices"]), **common)
            elif isinstance(value, bool):
                ctl = w.Checkbox(**common)
            elif isinstance(value, int):
                ctl = w.IntText(**common)
            elif isinstance(value, float):
                ctl = w.FloatText(**common)
            else:
                ctl = w.Text(**common)
            msg = w.HTML("")
            ctl.observe(lambda change, n=name: self._changed(n, change["new"]), names="value")
            self.controls[name], self.messages[name] = ctl, msg
            rows.append(w.VBox([ctl, msg]))
        self.output = w.HTML("")
        # Shown once `run(fn)` gives it something to do.
        self.button = w.Button(description="Run", button_style="primary",
                               layout=w.Layout(display="none"))
        self.concept_rows, self.concepts_message = [], w.HTML("")
        self.concepts_box = w.VBox([])
        add = w.Button(description="Add a subject", tooltip=knob_help("concepts"))
        add.on_click(lambda _: self.add_concept())
        self.widget = w.VBox(rows + [w.HTML("<b>Several subjects</b> (optional)"),
                                     self.concepts_box, add, self.concepts_message,
                                     self.button, self.output])
        for c in self.config.concepts:
            self.add_concept(**c)
        self._check_token()
        self._placeholders()
        self._sync_prior()

    def _changed(self, name: str, value) -> None:
        for msg in self.messages.values():
            msg.value = ""
        changes = {name: value}
        if name == "with_prior_preservation" and not value:
            # TrainConfig's one rule: the weight counts only with prior preservation, so it goes
            # back to its default (and its control is greyed out) when the switch is off
            changes["prior_loss_weight"] = DEFAULT_PRIOR_LOSS_WEIGHT
        try:
            self.config = self.config.replace(**changes)
        except ConfigError as e:
            shown = e.field if e.field in self.messages else name
            self.messages[shown].value = _red(str(e))
            return
        if name in ("identifier", "class_noun"):
            self._check_token()
            self._placeholders()
        if name == "with_prior_preservation":
            self._sync_prior()

    def _sync_prior(self) -> None:
        """The weight control shows the weight in use, editable only with prior preservation."""
        weight = self.controls.get("prior_loss_weight")
        if weight is not None:
            weight.disabled = not self.config.with_prior_preservation
            if weight.value != self.config.prior_loss_weight:
                weight.value = self.config.prior_loss_weight

    def _placeholders(self) -> None:
        """Empty prompt fields show the prompt they stand for ('a photo of zshq dog')."""
        for name, resolve in (("instance_prompt", lambda c: c.resolved_instance_prompt),
                              ("class_prompt", lambda c: c.resolved_class_prompt)):
            if name in self.controls:
                try:
                    self.controls[name].placeholder = resolve(self.config)
                except ConfigError:
                    self.controls[name].placeholder = ""

    def _check_token(self) -> None:
        if self.tokenizer is None or "identifier" not in self.messages:
            return
        check = check_identifier(self.tokenizer, self.config.identifier, self.config.class_noun)
        self.messages["identifier"].value = "" if check.ok else \
            f"<span style='color:#b36b00'>{html.escape(check.text())}</span>"

    # --- several subjects (TrainConfig.concepts) ---------------------------------------------
    def add_concept(self, instance_dir: str = "", identifier: str = "", class_noun: str = "",
                    **more) -> dict:
        """A row of controls for one more subject; returns its controls by key."""
        w = self._w
        row = {k: w.Text(value=str(v), description=k, placeholder=p,
                         style={"description_width": "90px"}, layout=w.Layout(width="300px"))
               for k, v, p in (("instance_dir", instance_dir, "folder of its photos"),
                               ("identifier", identifier, "e.g. tzky"),
                               ("class_noun", class_noun or self.config.class_noun, "e.g. dog"))}
        row["_more"] = more  # keys without a control (prompts, class_dir) are kept as given
        remove = w.Button(description="remove", layout=w.Layout(width="80px"))
        box = w.HBox([row["instance_dir"], row["identifier"], row["class_noun"], remove])
        row["_box"] = box

        def drop(_=None):
            self.concept_rows.remove(row)
            self.concepts_box.children = [r["_box"] for r in self.concept_rows]
            self._concepts_changed()
        remove.on_click(drop)
        row["_remove"] = drop
        for k in ("instance_dir", "identifier", "class_noun"):
            row[k].observe(lambda _: self._concepts_changed(), names="value")
        self.concept_rows.append(row)
        self.concepts_box.children = [r["_box"] for r in self.concept_rows]
        self._concepts_changed()
        return row

    def _concepts_changed(self) -> None:
        concepts = [{**r["_more"], **{k: r[k].value.strip() for k in
                                      ("instance_dir", "identifier", "class_noun")
                                      if r[k].value.strip()}} for r in self.concept_rows]
        self.concepts_message.value = ""
        try:
            self.config = self.config.replace(concepts=concepts)
        except ConfigError as e:
            self.concepts_message.value = _red(str(e))

    def set(self, name: str, value) -> None:
        """Change a control as a user would (tests and scripts)."""
        self.controls[name].value = value

    def message(self, name: str) -> str:
        """The text shown under a control ('' when the value is fine)."""
        return html.unescape(_strip_tags(self.messages[name].value))

    def run(self, fn, description: str = "Run"):
        """Make the button call fn(config); errors appear in the panel, not as tracebacks."""
        def click(_=None):
            self.output.value = ""
            try:
                fn(self.config)
            except DreamkitError as e:
                self.output.value = _red(str(e))
        self.button.on_click(click)
        self.button.description = description
        self.button.layout.display = None
        return click

    def _ipython_display_(self):
        from IPython.display import display
        display(self.widget)


def _red(text: str) -> str:
    return f"<span style='color:#b00020'>{html.escape(text)}</span>"


def _strip_tags(text: str) -> str:
    import re
    return re.sub(r"<[^>]+>", "", text)
