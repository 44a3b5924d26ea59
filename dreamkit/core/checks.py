"""The inputs of every command, checked before anything runs or is written.

A mistake on the command line gets the same kind of line as a training setting: the setting,
the value and the fix (`ConfigError`), and nothing is loaded, generated or written first.
Training settings are checked by TrainConfig itself; these are the other commands' flags.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import ConfigError

__all__ = ["whole", "seed", "size", "prompt_list", "not_inside", "writable_file", "check_generate", "check_export",
           "check_check_data", "check_check_token", "check_evaluate", "check_demo",
           "SEED_MAX"]

SEED_MAX = 2**32 - 1  # numpy's generators take seeds up to here


def whole(name: str, value, minimum: int = 1, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or \
            (maximum is not None and value > maximum):
        limit = f" and at most {maximum}" if maximum is not None else ""
        raise ConfigError(name, value, f"must be a whole number of at least {minimum}{limit}")


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


def writable_file(name: str, path) -> None:
    """A file to write: not an existing folder, its folder not a file."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(name, str(p), "is a folder; give a file name such as checks.png")
    if p.parent.exists() and not p.parent.is_dir():
        raise ConfigError(name, str(p), f"{p.parent} is a file, not a folder")


def check_generate(args) -> None:
    whole("num_images", args.num_images, 1, 64)
    whole("steps", args.steps, 1, 1000)
    seed("seed", args.seed)
    size("height", args.height)
    size("width", args.width)
    if args.guidance_scale < 0:
        raise ConfigError("guidance_scale", args.guidance_scale, "must be 0 or more (7.5 is usual)")
    if not args.prompt.strip():
        raise ConfigError("prompt", args.prompt, "say what to draw, e.g. 'a photo of zshq dog'")
    if args.out is not None and Path(args.out).is_file():
        raise ConfigError("out", args.out, "is a file; give a folder for the pictures")


def check_export(args) -> None:
    out = Path(args.out)
    if out.is_file():
        raise ConfigError("out", args.out, "is a file; give a folder to export into")
    not_inside("out", out, {"the model folder": args.model if Path(args.model).exists() else ""})
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


def check_check_data(args) -> None:
    whole("resolution", args.resolution, 8)
    size("resolution", args.resolution)
    if args.grid:
        writable_file("grid", args.grid)
        if Path(args.grid).suffix.lower() not in (".png", ".jpg", ".jpeg", ".webp"):
            raise ConfigError("grid", args.grid, "name a picture file ending in .png or .jpg")
    if args.fix:
        if Path(args.fix).is_file():
            raise ConfigError("fix", args.fix, "is a file; give a new folder for the copies")
        # inside the photo folder the copies would be read as photos by the next run
        not_inside("fix", args.fix, {"the photo folder": args.folder})


def check_check_token(args) -> None:
    ident = args.identifier
    if not ident.strip() or ident != ident.strip() or " " in ident:
        raise ConfigError("identifier", ident, "use one rare word without spaces, e.g. 'zshq'")
    whole("suggest", args.suggest, 0, 100)


def check_evaluate(args) -> None:
    whole("prompts", args.prompts, 1, 25)
    whole("per_prompt", args.per_prompt, 1, 64)
    whole("n_class", args.n_class, 2, 256)  # diversity compares class pictures in pairs
    seed("seed", args.seed)


def check_demo(args) -> None:
    if args.steps is not None:
        whole("steps", args.steps, 1, 100_000)
    seed("seed", args.seed)
