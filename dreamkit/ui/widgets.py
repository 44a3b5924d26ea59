"""Notebook controls bound to TrainConfig, with messages next to the controls.

`ConfigPanel(config)` shows one control per chosen setting (its `why` as the tooltip). Each
change is checked at once by TrainConfig's own validation; a bad value shows the same one-line
message the CLI prints, under the control that caused it, until it is fixed or put back, and
while one shows, `panel.config` refuses (a ConfigError naming it): the panel never runs with
values other than those on screen. `panel.run(fn)` is the button that starts a step: any DreamkitError from it is shown
in the panel, not as a traceback.

With `tokenizer=` (the base model's), the identifier is checked as you type (tokens.py): a
word that splits into several tokens or has a meaning gets an orange note with rare
alternatives. "Add a subject" adds a row (photos folder, identifier, class noun) for a run with
several subjects (TrainConfig.concepts).
"""

from __future__ import annotations

import dataclasses
import html

from ..core.config import TrainConfig, knob_help
from ..core.errors import ConfigError, DreamkitError
from ..models.tokens import check_identifier

# IPython, ipywidgets: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["ConfigPanel", "DEFAULT_FIELDS"]

DEFAULT_FIELDS = ("identifier", "class_noun", "instance_prompt", "class_prompt",
                  "max_train_steps", "with_prior_preservation", "prior_loss_weight",
                  "num_class_images", "learning_rate", "resolution", "step_mode")


class ConfigPanel:
    """Controls for some TrainConfig fields; `.config` is always a valid TrainConfig."""

    def __init__(self, config: TrainConfig | None = None, fields=DEFAULT_FIELDS,
                 tokenizer=None, seconds_per_step: float | None = None):
        """`seconds_per_step`: shown under max_train_steps as the run's time, as you type."""
        import ipywidgets as w

        self._w = w
        self.tokenizer, self.seconds_per_step = tokenizer, seconds_per_step
        self._config = self._start = config or TrainConfig()
        self.errors, self.concepts_error = {}, ""  # refused values shown: field -> ConfigError
        self.controls, self.messages = {}, {}
        meta = {f.name: f for f in dataclasses.fields(TrainConfig)}
        if isinstance(fields, str) or not all(isinstance(n, str) for n in fields):
            raise ConfigError("fields", fields, "give a list of setting names, e.g. "
                              "['identifier', 'max_train_steps']")
        unknown = [n for n in fields if n not in meta]
        if unknown:
            raise ConfigError("fields", unknown[0], "is not a TrainConfig setting; check the "
                              "spelling (`dreamkit train --help` lists them)")
        if config is not None and not isinstance(config, TrainConfig):
            raise ConfigError("config", type(config).__name__, "give a TrainConfig, or None")
        rows = []
        for name in fields:
            value = getattr(self._config, name)
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
        self.reset_button = w.Button(description="Back to the defaults",
                                     tooltip="every control back to the value it started with")
        self.reset_button.on_click(lambda _: self.reset())
        self.concept_rows, self.concepts_message = [], w.HTML("")
        self.concepts_box = w.VBox([])
        add = w.Button(description="Add a subject", tooltip=knob_help("concepts"))
        add.on_click(lambda _: self.add_concept())
        self.widget = w.VBox(rows + [w.HTML("<b>Several subjects</b> (optional)"),
                                     self.concepts_box, add, self.concepts_message,
                                     w.HBox([self.button, self.reset_button]), self.output])
        for c in self._config.concepts:
            self.add_concept(**c)
        self._check_token()
        self._placeholders()
        self._sync_prior()
        self._estimate()

    def reset(self) -> None:
        """Every control back to the value the panel started with (messages go with them)."""
        for name, ctl in self.controls.items():
            ctl.value = getattr(self._start, name)
        self.output.value = ""

    def _estimate(self) -> None:
        """The run's training time under max_train_steps, as you type."""
        steps = self.controls.get("max_train_steps")
        if steps is None or not self.seconds_per_step or "max_train_steps" in self.errors:
            return
        secs = steps.value * self.seconds_per_step
        when = f"{secs:.0f} s" if secs < 120 else f"{secs / 60:.0f} min" if secs < 7200 \
            else f"{secs / 3600:.1f} h"
        self.messages["max_train_steps"].value = (
            f"<span style='color:#666'>training takes about {when} here "
            f"({self.seconds_per_step:.3f} s a step)</span>")

    def _changed(self, name: str, value) -> None:
        self.output.value = ""  # what the last click said is about values since changed
        self._revalidate()  # TrainConfig decides (the prior rule too); the panel shows it
        self._sync_prior()
        self._estimate()

    def _revalidate(self) -> None:
        """Check every value the panel shows, together. A value TrainConfig refuses keeps its
        red message, under its own control, until it is fixed or put back; meanwhile `config`
        refuses to give a config, so nothing ever runs with values other than those shown."""
        shown = {n: c.value for n, c in self.controls.items()}
        self.errors = {}
        while True:  # drop the refused values one by one: each field gets its own message
            try:
                self._config = self._config.replace(
                    **{n: v for n, v in shown.items() if n not in self.errors})
                break
            except ConfigError as e:
                field = e.field if e.field in shown and e.field not in self.errors else None
                if field is None:  # a rule between fields: shown under the last one changed
                    field = next(n for n in reversed(list(shown)) if n not in self.errors)
                self.errors[field] = e if field == e.field else ConfigError(field, shown[field], str(e))
        for n, msg in self.messages.items():
            msg.value = _red(str(self.errors[n])) if n in self.errors else ""
        self._check_token()
        self._placeholders()

    @property
    def config(self) -> TrainConfig:
        """The TrainConfig of exactly what the panel shows; a ConfigError naming the field while
        any shown value is refused (fix it in the panel, or put the old value back)."""
        return self._checked("run this cell again")

    def _checked(self, then: str) -> TrainConfig:
        if self.errors:
            field, e = next(iter(self.errors.items()))
            raise ConfigError(field, e.value, f"{e.fix}. The panel shows this refused value: "
                                              f"fix it there, or put the old one back, then "
                                              f"{then}")
        if self.concepts_error:  # the subject rows: their message is under them
            raise DreamkitError(f"{self.concepts_error}. The panel shows these subjects: fix "
                                f"them there, then {then}")
        return self._config

    @config.setter
    def config(self, value: TrainConfig) -> None:
        self._config = value

    def _sync_prior(self) -> None:
        """The weight is greyed out while prior preservation is off (it has no effect then),
        with a note saying so, unless it holds a value TrainConfig refused: then it stays
        editable, so it can be put back."""
        weight = self.controls.get("prior_loss_weight")
        if weight is None:
            return
        off = not self._config.with_prior_preservation
        weight.disabled = off and "prior_loss_weight" not in self.errors
        if weight.disabled:
            self.messages["prior_loss_weight"].value = (
                "<span style='color:#666'>used only with prior preservation: tick "
                "with_prior_preservation to change it</span>")

    def _placeholders(self) -> None:
        """Empty prompt fields show the prompt they stand for ('a photo of zshq dog')."""
        for name, resolve in (("instance_prompt", lambda c: c.resolved_instance_prompt),
                              ("class_prompt", lambda c: c.resolved_class_prompt)):
            if name in self.controls:
                try:
                    self.controls[name].placeholder = resolve(self._config)
                except ConfigError:
                    self.controls[name].placeholder = ""

    def _check_token(self) -> None:
        if self.tokenizer is None or "identifier" not in self.messages \
                or "identifier" in self.errors:  # a refused identifier: its error shows
            return
        check = check_identifier(self.tokenizer, self._config.identifier,
                                 self._config.class_noun)
        self.messages["identifier"].value = "" if check.ok else \
            "<span style='color:#b36b00'>" + "<br>".join(  # one line per sentence, as printed
                html.escape(line.strip()) for line in check.text().splitlines()) + "</span>"

    # --- several subjects (TrainConfig.concepts) ---------------------------------------------
    def add_concept(self, instance_dir: str = "", identifier: str = "", class_noun: str = "",
                    **more) -> dict:
        """A row of controls for one more subject; returns its controls by key."""
        w = self._w
        row = {k: w.Text(value=str(v), description=k, placeholder=p,
                         style={"description_width": "90px"}, layout=w.Layout(width="300px"))
               for k, v, p in (("instance_dir", instance_dir, "folder of its photos"),
                               ("identifier", identifier, "e.g. tzky"),
                               ("class_noun", class_noun or self._config.class_noun, "e.g. dog"))}
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
        self.concepts_message.value, self.concepts_error = "", ""
        try:
            self._config = self._config.replace(concepts=concepts)
        except ConfigError as e:
            self.concepts_error = str(e)
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
                fn(self._checked(f"press {self.button.description} again"))
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
    return re.sub(r"<[^>]+>", "", text.replace("<br>", "\n"))
