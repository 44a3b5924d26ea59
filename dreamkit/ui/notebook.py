"""What the Colab notebooks' cells call, so that each stage stays a few readable lines.

**Settings are Colab form fields** (`STEPS = 400  #@param {type:"integer"}`). Colab writes what
the form shows into the cell's source, so the notebook saved on Drive keeps it across a
disconnect, and Run all trains with exactly what the forms show; outside Colab the fields are
plain assignments, which tests (and papermill) set. Widget values live only in the browser: they
come back as the code's defaults after a reconnect, and a Run all reads them the moment they
appear. So the Colab notebooks use forms; the classroom's widget panel trains only from its own
button (`ConfigPanel.run`), never from Run all.

- `brief_errors()`: a DreamkitError ends its cell with its one-line message, as on the command
  line, instead of a traceback (Run all still stops there).
- `notebook_config(...)`: the TrainConfig the form fields describe, for a GPU (SD 1.5 with
  `T4_SETTINGS`; SDXL with LoRA) or for the CPU's toy world.
- `try_model(...)`: pictures of any prompt, saved in the run folder with their settings.
- `caption_editor(folder)`: a caption box under each photo, saved as its `.txt` file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..core.config import TrainConfig
from ..core.errors import ConfigError, DreamkitError
from ..models.sdxl import is_sdxl
from ..planning.recipes import SDXL_SETTINGS, recipe_for  # noqa: F401 (saved notebooks)

# IPython, ipywidgets: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["brief_errors", "notebook_config", "MODELS", "is_sdxl_model", "try_model",
           "caption_editor"]

MODELS = {"SD 1.5": "stable-diffusion-v1-5/stable-diffusion-v1-5",
          "SDXL": "stabilityai/stable-diffusion-xl-base-1.0"}
is_sdxl_model = is_sdxl  # the name saved notebooks import


def brief_errors() -> None:
    """In IPython, show a DreamkitError as its one line (the setting, the value, the fix)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return

    def one_line(shell, etype, value, tb, tb_offset=None):
        import sys
        print(f"✗ {value}", file=sys.stderr)
        return None
    shell.set_custom_exc((DreamkitError,), one_line)


# What the toy world replaces on the CPU path: its own model, words and scale
_TOY_REPLACES = ("pretrained_model_name_or_path", "identifier", "class_noun", "instance_prompt",
                 "learning_rate", "resolution")


def notebook_config(on_gpu: bool, model: str, photos, out, *, identifier: str, class_noun: str,
                    steps: int, prior_preservation: bool, prior_loss_weight: float,
                    num_class_images: int, learning_rate: float, instance_prompt: str = "",
                    resolution: int = 512, sample_every: int = 0, seed: int = 0,
                    knobs: dict | None = None, notes: list | None = None) -> TrainConfig:
    """The TrainConfig of the notebook's form fields, checked as the CLI and Python check them
    (TrainConfig's one validation: a refused value is one ConfigError naming the field), on
    both paths. On a GPU: `model` with its recipe (planning/recipes.py: T4_SETTINGS, or LoRA at
    1024 px for SDXL), a checkpoint every 100 steps and resume='auto', so running the training
    cell again after a disconnect continues. On the CPU: the toy world (its model, words,
    learning rate and size replace the form's, which are for Stable Diffusion), with the
    form's steps, prior settings and seed; each replaced value is added to `notes`. `knobs`:
    any other TrainConfig settings (the field's knobs, docs/knobs.md), kept on both paths."""
    notes = [] if notes is None else notes
    form = dict(pretrained_model_name_or_path=model, instance_dir=str(photos),
                output_dir=str(out), identifier=identifier, class_noun=class_noun,
                instance_prompt=instance_prompt, max_train_steps=steps,
                with_prior_preservation=prior_preservation, prior_loss_weight=prior_loss_weight,
                num_class_images=num_class_images, learning_rate=learning_rate,
                resolution=resolution, sample_every=sample_every, seed=seed)
    if knobs is not None and not isinstance(knobs, dict):
        raise ConfigError("knobs", knobs, "give a dict of settings, e.g. "
                          "{'snr_gamma': 5.0, 'random_flip': True}, or {}")
    unknown = sorted(set(knobs or {}) - {f.name for f in dataclasses.fields(TrainConfig)})
    if unknown:
        raise ConfigError(unknown[0], (knobs or {})[unknown[0]], "is not a TrainConfig setting; "
                          "check the spelling (`dreamkit train --help` lists them)")
    form.update(knobs or {})
    yours = TrainConfig(**form)  # the values as typed: refused here, whatever the path
    if not on_gpu:
        from ..toy.demo import demo_config
        toy = demo_config(Path(out).parent, Path(photos), steps=yours.max_train_steps,
                          seed=yours.seed)
        changed = [f"{k} {getattr(yours, k)!r} -> {getattr(toy, k)!r}" for k in _TOY_REPLACES
                   if getattr(yours, k) != getattr(toy, k)]
        notes.append("no GPU: the toy world trains instead (its model, words and scale; the "
                     "form's steps, prior settings and seed apply): " + "; ".join(changed))
        return toy.replace(**{**(knobs or {}), "output_dir": yours.output_dir,
                              "sample_every": yours.sample_every,
                              "with_prior_preservation": yours.with_prior_preservation,
                              "prior_loss_weight": yours.prior_loss_weight,
                              "num_class_images": yours.num_class_images})
    name, recipe = recipe_for(model)
    if "resolution" in recipe and yours.resolution < recipe["resolution"]:
        notes.append(f"{name}: resolution {yours.resolution} -> {recipe['resolution']}")
    if recipe.get("use_lora") and yours.learning_rate < 5e-5:
        notes.append(f"learning_rate {yours.learning_rate:g} is low for LoRA ({name}): 1e-4 is "
                     f"usual")
    size = max(yours.resolution, recipe.get("resolution", 0))
    return yours.replace(**{"checkpointing_steps": 100, "resume": "auto", **recipe,
                            "resolution": size, **(knobs or {})})  # your knobs over the recipe


def try_model(model, prompt: str, negative_prompt: str = "", seed: int = 0, steps: int = 30,
              guidance: float = 7.5, count: int = 4, pipe=None) -> tuple[list, Path]:
    """`count` pictures of `prompt` from a trained run (or any model); saved, with the prompt
    and settings in each PNG, under <run>/generated/<time>_<prompt>/. Returns (images, folder).
    `pipe`: a pipeline already loaded from `model` (saves reloading it for every prompt)."""
    from ..outputs.sample import generate, output_folder, save_images
    settings = dict(negative_prompt=negative_prompt or None, num_images=int(count),
                    num_inference_steps=int(steps), guidance_scale=float(guidance),
                    seed=int(seed))
    images = generate(pipe if pipe is not None else str(model), prompt, **settings)
    folder = output_folder(str(model), prompt)
    save_images(images, folder, prompt, int(seed), negative_prompt=negative_prompt,
                steps=int(steps), guidance=float(guidance), model=str(model))
    return images, folder


def caption_editor(folder, placeholder: str = "a photo of {token} {class} ..."):
    """A text box under each photo of `folder`; 'Save captions' writes each non-empty box to
    the photo's .txt file (what training reads as its caption), an emptied box removes it."""
    import ipywidgets as w

    from ..inputs.photos import find_images
    scan = find_images(folder)
    rows, boxes = [], {}
    for path in scan.images:
        txt = path.with_suffix(".txt")
        box = w.Text(value=txt.read_text().strip() if txt.is_file() else "",
                     placeholder=placeholder, layout=w.Layout(width="420px"))
        thumb = w.Image(value=_thumbnail(path), format="png", width=96, height=96)
        boxes[path] = box
        rows.append(w.HBox([thumb, w.VBox([w.HTML(f"<code>{path.name}</code>"), box])]))
    status = w.HTML("")
    save = w.Button(description="Save captions", button_style="primary")

    def write(_=None):
        written = 0
        for path, box in boxes.items():
            txt = path.with_suffix(".txt")
            if box.value.strip():
                txt.write_text(box.value.strip() + "\n")
                written += 1
            elif txt.is_file():
                txt.unlink()
        status.value = f"{written} caption(s) saved next to the photos"
    save.on_click(write)
    editor = w.VBox(rows + [save, status])
    editor.save = write  # tests and scripts: the button's job
    editor.boxes = boxes
    return editor


def _thumbnail(path) -> bytes:
    import io

    from ..inputs.photos import load_image
    buf = io.BytesIO()
    load_image(path, 96).save(buf, format="PNG")
    return buf.getvalue()
