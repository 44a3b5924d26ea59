"""The inputs of every command, checked before anything runs or is written.

A mistake on the command line gets the same kind of line as a training setting: the setting,
the value and the fix (`ConfigError`), and nothing is loaded, generated or written first.
Training settings are checked by TrainConfig itself; these are the other commands' flags.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

from .errors import ConfigError

__all__ = ["whole", "number", "seed", "size", "identifier", "prompt_list", "not_inside",
           "nearest_existing", "writable", "output_folder", "output_file", "inputs_of", "writable_file",
           "generate_settings", "generated_out", "check_generate", "check_resolution",
           "check_export", "check_check_data", "check_check_token", "check_evaluate",
           "check_toy", "check_demo", "SEED_MAX", "PICTURE_SUFFIXES"]

SEED_MAX = 2**32 - 1  # numpy's generators take seeds up to here
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def whole(name: str, value, minimum: int = 1, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or \
            (maximum is not None and value > maximum):
        limit = f" and at most {maximum}" if maximum is not None else ""
        raise ConfigError(name, value, f"must be a whole number of at least {minimum}{limit}")


def number(name: str, value, minimum: float | None = None, above: float | None = None,
           hint: str = "") -> None:
    """A finite number (True/False, text, NaN and inf are refused), at least `minimum` or
    above `above`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (minimum is not None and value < minimum) or (above is not None and
                                                                value <= above):
        bound = f", {minimum:g} or more" if minimum is not None else \
            f" above {above:g}" if above is not None else ""
        raise ConfigError(name, value, f"must be a finite number{bound}{hint}")


def identifier(name: str, value) -> None:
    """One rare word: no space, tab or newline (it must stay one word in every prompt)."""
    if not isinstance(value, str) or not value.strip() or re.search(r"\s", value):
        raise ConfigError(name, value, "use one rare word without spaces, e.g. 'zshq' "
                          "(`dreamkit check-token` suggests more)")


def prompt_list(name: str, value) -> None:
    if not isinstance(value, list) or not all(isinstance(p, str) and p.strip() for p in value):
        raise ConfigError(name, value, "give a list of non-empty prompts (or an empty list)")


def seed(name: str, value) -> None:
    whole(name, value, 0, SEED_MAX)


def size(name: str, value) -> None:
    if value is not None and (value < 8 or value % 8):
        raise ConfigError(name, value, "must be a multiple of 8 of at least 8 (the VAE works in "
                          f"8-pixel cells); try {max(8, round(value / 8) * 8)}")


def not_inside(name: str, out, inputs: dict) -> None:
    """The folder rule, for every face: refuse an output (`name`=`out`) that is, is inside, or
    holds an input folder. `inputs`: {how the message names it: folder}; empty ones skipped."""
    out_path = Path(out).expanduser().resolve()
    for what, folder in inputs.items():
        if not folder:
            continue
        src = Path(folder).expanduser().resolve()
        if out_path == src or src in out_path.parents or out_path in src.parents:
            relation = "is" if out_path == src else "is inside" if src in out_path.parents \
                else "holds"
            raise ConfigError(name, str(out), f"{relation} {what} {str(src)!r}; write outside "
                              f"it, so your inputs stay as they were")


def nearest_existing(path) -> Path:
    """`path`, or its nearest parent that exists: where a folder still to be made will live
    (its free space, whether it can be written)."""
    where = Path(path).expanduser().absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    return where


def writable(name: str, path, shown=None) -> None:
    """Whether `path` (a folder, made later if missing) can be written, tried in its nearest
    existing folder so that nothing is made before the work starts."""
    shown = str(path if shown is None else shown)
    where = nearest_existing(path)
    if not where.is_dir():
        raise ConfigError(name, shown, f"is not writable: {where} is a file, not a "
                          f"folder; choose a folder you can write to")
    try:
        with tempfile.TemporaryFile(dir=where):
            pass
    except OSError as e:
        raise ConfigError(name, shown, f"is not writable ({e.strerror or e}); choose a "
                          f"folder you can write to") from None


def output_folder(name: str, out, inputs: dict | None = None, model_ok: bool = False) -> Path:
    """The output rule, for every face that writes a folder: a name (an empty one would write
    into the current folder), not a file, never among its inputs (`not_inside`), not a folder
    holding a model unless `model_ok`, and writable."""
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise ConfigError(name, out, "give a folder name, e.g. 'runs/my-dog' (an empty name "
                          "would write into the current folder)")
    path = Path(out).expanduser()
    if path.is_file():
        raise ConfigError(name, str(out), "is a file; give a folder")
    not_inside(name, path, inputs or {})
    if not model_ok and (path / "model_index.json").is_file():
        raise ConfigError(name, str(out), "holds a model (model_index.json); choose a new "
                          "folder, so that no model is mixed with other files")
    writable(name, path)
    return path


def output_file(name: str, path, inputs: dict | None = None, suffixes: tuple = ()) -> Path:
    """The output rule for one file: not a folder, never among its inputs, a known suffix,
    its folder writable."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ConfigError(name, path, "give a file name, e.g. 'checks.png'")
    writable_file(name, path, f"out{suffixes[0]}" if suffixes else "checks.png")
    p = Path(path).expanduser()
    if suffixes and p.suffix.lower() not in suffixes:
        raise ConfigError(name, str(path), f"name a file ending in {' or '.join(suffixes)}")
    not_inside(name, p, inputs or {})
    writable(name, p.parent, shown=path)
    return p


def inputs_of(model, include_model: bool = True) -> dict:
    """What a model folder was made from, named as the folder rule names them: the folder
    itself (`include_model`) and, for a dreamkit run (its config.json), its photo and class
    folders and a local base model."""
    folder = Path(str(model)).expanduser()
    found = {"the model folder": str(folder)} if include_model and folder.is_dir() else {}
    try:
        saved = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return found
    if not isinstance(saved, dict) or "instance_dir" not in saved:
        return found
    entries = [saved] + [c for c in saved.get("concepts") or [] if isinstance(c, dict)]
    for i, entry in enumerate(entries):
        label = "its " if i == 0 else f"its concepts[{i - 1}] "
        for key, what in (("instance_dir", "photo folder"), ("class_dir", "class folder")):
            if isinstance(entry.get(key), str) and entry[key].strip():
                found[label + what] = entry[key]
    base = saved.get("pretrained_model_name_or_path")
    if isinstance(base, str) and (Path(base).expanduser() / "model_index.json").is_file():
        found["its base model"] = base
    return found


def writable_file(name: str, path, example: str = "checks.png") -> None:
    """A file to write: not an existing folder, its folder not a file."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(name, str(p), f"is a folder; give a file name such as {example}")
    if p.parent.exists() and not p.parent.is_dir():
        raise ConfigError(name, str(p), f"{p.parent} is a file, not a folder")


def generate_settings(prompt, num_images, steps, seed_value, height, width, guidance_scale,
                      negative_prompt=None, steps_name: str = "steps") -> None:
    """What `generate` takes, checked the same way from the CLI, the notebooks and Python."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigError("prompt", prompt, "say what to draw, e.g. 'a photo of zshq dog'")
    if negative_prompt is not None and not isinstance(negative_prompt, str):
        raise ConfigError("negative_prompt", negative_prompt, "give text, or None")
    whole("num_images", num_images, 1, 64)
    whole(steps_name, steps, 1, 1000)
    seed("seed", seed_value)
    for name, value in (("height", height), ("width", width)):
        if value is not None:
            whole(name, value, -2**31)  # a whole number before its size is judged
            size(name, value)
            whole(name, value, 8, 4096)
    number("guidance_scale", guidance_scale, 0, hint=" (7.5 is usual; 0 turns guidance off)")


def check_generate(args) -> None:
    generate_settings(args.prompt, args.num_images, args.steps, args.seed, args.height,
                      args.width, args.guidance_scale, args.negative_prompt)
    base = Path(str(args.base)).expanduser()
    if args.base is not None and (base.exists() or str(args.base).startswith((".", "/", "~"))) \
            and not (base / "model_index.json").is_file():  # a local path, not a hub id
        raise ConfigError("base", args.base, "is not a diffusers model folder (no "
                          "model_index.json); give the base model the LoRA was trained on")
    if args.out is not None:
        generated_out(args.model, args.out)


def generated_out(model, out) -> Path:
    """Where pictures of `model` may go: never among what a run was made from, nor inside a
    model folder of others (a run's own folder may hold its pictures)."""
    run = (Path(str(model)).expanduser() / "config.json").is_file()  # dreamkit writes it
    return output_folder("out", out, inputs_of(model, include_model=not run))


def check_export(args) -> None:
    out = output_folder("out", args.out, inputs_of(args.model), model_ok=True)
    if (out / "model_index.json").is_file() and not args.overwrite:
        raise ConfigError("out", args.out, "already holds a model; choose an empty folder, or "
                          "pass --overwrite to replace its files")
    if args.no_diffusers and not args.single_file and not (Path(args.model) /
                                                           "pytorch_lora_weights.safetensors"
                                                           ).is_file():
        raise ConfigError("no_diffusers", True, "leaves nothing to export for a full model: add "
                          "--single_file, or drop --no_diffusers")
    if getattr(args, "name", None) is not None and not re.fullmatch(r"[\w.-]{1,80}", args.name):
        raise ConfigError("name", args.name, "use letters, digits, '-', '_' or '.', e.g. "
                          "my-dog (it names the LoRA file)")
    if args.push_to_hub is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", args.push_to_hub):
        raise ConfigError("push_to_hub", args.push_to_hub, "give USER/NAME, e.g. me/my-dog")


def check_resolution(name: str, value) -> None:
    whole(name, value, 8, 4096)
    size(name, value)


def check_check_data(args) -> None:
    check_resolution("resolution", args.resolution)
    photos = {"the photo folder": args.folder}  # what lands there is read as a photo next run
    if args.grid:
        output_file("grid", args.grid, photos, PICTURE_SUFFIXES)
    if args.fix:
        output_folder("fix", args.fix, photos)


def check_check_token(args) -> None:
    identifier("identifier", args.identifier)
    whole("suggest", args.suggest, 0, 100)


def check_evaluate(args) -> None:
    if Path(args.run).is_dir():  # evaluation.json and its chart are written beside the model
        writable("run", args.run)
    whole("prompts", args.prompts, 1, 25)
    whole("per_prompt", args.per_prompt, 1, 64)
    whole("n_class", args.n_class, 2, 256)  # diversity compares class pictures in pairs
    seed("seed", args.seed)


def check_toy(args) -> None:
    if args.toy_command == "pretrain":
        seed("seed", args.seed)
        for name in ("images", "vae_steps", "unet_steps"):
            whole(name, getattr(args, name), 1, 10_000_000)
    output_folder("out", args.out, model_ok=args.toy_command == "pretrain")


def check_demo(args) -> None:
    if args.steps is not None:
        whole("steps", args.steps, 1, 100_000)
    seed("seed", args.seed)
    output_folder("out", args.out, model_ok=True)
