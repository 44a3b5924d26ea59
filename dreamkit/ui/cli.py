"""`dreamkit ...` commands, one per notebook step.

    dreamkit check-data photos/                                        # step 1: check photos
    dreamkit class-images --instance_dir photos --class_noun dog ...   # step 2: class images
    dreamkit train --instance_dir photos --class_noun dog ...          # step 3: fine-tune
    dreamkit generate RUN_DIR --prompt "a photo of zshq dog"            # step 4: use it
    dreamkit export RUN_DIR --out my-model --single_file --half        # step 5: other tools
    dreamkit plan-memory --use_8bit_adam ... | dreamkit env             # will it fit? what runs?
    dreamkit demo                                                      # all of it, offline, CPU
    dreamkit toy pretrain | photos DIR                                 # the toy world

Every TrainConfig field is a flag with its reason as help; `--config FILE` loads a saved
config.json and flags given on the command line override it. Mistakes print one line naming the
setting and the fix (exit code 2); `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings
from pathlib import Path

from ..core.config import TrainConfig
from ..core.errors import DreamkitError
from ..outputs.schedulers import SCHEDULERS

__all__ = ["main", "build_parser"]


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _json_list(text: str) -> list:
    """A JSON list given inline or as the path of a .json file."""
    source = Path(text).expanduser()
    try:
        data = json.loads(source.read_text() if source.is_file() else text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise argparse.ArgumentTypeError(f"not a JSON list nor a readable .json file: {e}")
    except OSError as e:  # a path that looked like a file
        raise argparse.ArgumentTypeError(str(e))
    if not isinstance(data, list):
        raise argparse.ArgumentTypeError("must be a JSON list of objects, e.g. "
                                         "[{\"instance_dir\": \"photos/rex\", ...}]")
    return data


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="a saved config.json; flags given here override its values")
    g = p.add_argument_group("training settings (TrainConfig)")
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        why = f"{f.metadata.get('why', '')} (default: {default!r})"
        # argparse formats help with %: a literal one ("~30% slower") must be doubled
        kw = {"default": argparse.SUPPRESS, "help": why.replace("%", "%%")}
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
        if isinstance(default, bool):
            # `--flag` alone means true (as in diffusers' scripts); `--flag false` also works.
            kw.update(type=_bool, nargs="?", const=True, metavar="true|false")
        elif f.metadata.get("cli") == "json":
            kw.update(type=_json_list, metavar="JSON|FILE")
        elif isinstance(default, list):
            kw.update(nargs="*", metavar="PROMPT" if "prompt" in f.name else "NAME")
        elif isinstance(default, (int, float)):
            kw["type"] = type(default)
        elif "type" in f.metadata:  # optional numbers (default None)
            kw["type"] = f.metadata["type"]
        names = [f"--{f.name}"] + [f"--{a}" for a in f.metadata.get("aliases", ())]
        g.add_argument(*names, dest=f.name, **kw)


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (not the whole usage) pointing to --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="dreamkit", description="DreamBooth, step by step.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_training_commands, _generate_command, _export_command, _check_commands,
                _evaluate_command, _demo_and_toy_commands):
        add(sub)
    e = sub.add_parser("env", help="what this machine can run: GPU, 8-bit AdamW, attention, "
                       "precision, with the fallbacks dreamkit will use")
    e.set_defaults(func="cmd_env")
    return p


def _training_commands(sub) -> None:
    t = sub.add_parser("train", help="fine-tune a model on your photos (DreamBooth)")
    _add_config_flags(t)
    t.add_argument("--overwrite", action="store_true",
                   help="replace a trained model already in output_dir")
    t.set_defaults(func="cmd_train")
    m = sub.add_parser("plan-memory", help="will this training fit the GPU? the estimated peak, "
                       "its parts and the changes that make it fit (exit 1 if it does not)")
    _add_config_flags(m)
    m.add_argument("--gpu", default=None, help="T4 (default without a GPU), L4, A10G, V100, "
                   "A100-40GB, A100-80GB, H100; default: the GPU here")
    m.add_argument("--recipes", action="store_true", help="also plan the usual small-GPU "
                   "recipes with this model and rank those that fit by their time floor")
    m.set_defaults(func="cmd_plan_memory")
    c = sub.add_parser("class-images", help="generate the class images for prior preservation")
    _add_config_flags(c)
    c.set_defaults(func="cmd_class_images")


def _generate_command(sub) -> None:
    g = sub.add_parser("generate", help="make pictures with a trained (or any) model")
    g.add_argument("model", help="a training run folder (output_dir), or any diffusers model "
                   "folder or hub id")
    g.add_argument("--prompt", required=True,
                   help="what to draw, e.g. 'a photo of zshq dog on the beach'")
    g.add_argument("--negative_prompt", default=None, help="what to avoid, e.g. 'blurry, lowres'")
    g.add_argument("--num_images", type=int, default=4, help="how many pictures (default 4)")
    g.add_argument("--guidance_scale", type=float, default=7.5,
                   help="how strongly to follow the prompt (default 7.5)")
    g.add_argument("--steps", type=int, default=30, help="denoising steps (default 30)")
    g.add_argument("--seed", type=int, default=0, help="picture k uses seed+k (default 0)")
    g.add_argument("--height", type=int, default=None, help="pixels (default: the model's size)")
    g.add_argument("--width", type=int, default=None, help="pixels (default: the model's size)")
    g.add_argument("--out", default=None, help="an empty folder for the PNGs (default: a new "
                   "RUN/generated/<time>_<prompt>/ for a training run, else "
                   "./generated/<time>_<prompt>/; pictures are never overwritten)")
    g.add_argument("--scheduler", default=None, choices=sorted(SCHEDULERS),
                   help="sampler (default: the model's own); dpm++ is good in 20-25 steps")
    g.add_argument("--lora", default=None, help="a LoRA file or folder to put on the model")
    g.add_argument("--base", default=None, help="base model of a LoRA run (default: from its "
                   "config.json)")
    g.add_argument("--compare_base", action="store_true",
                   help="also draw the base model at the same seeds: before_after.png")
    g.add_argument("--checkpoints", action="store_true", help="also a grid with one row per "
                   "kept checkpoint of the run and the final model: checkpoints.png")
    g.set_defaults(func="cmd_generate")


def _export_command(sub) -> None:
    x = sub.add_parser("export", help="write a model for other tools: the diffusers folder, "
                       "LoRA files, a single .safetensors (AUTOMATIC1111, ComfyUI)")
    x.add_argument("model", help="a training run folder, or any diffusers model folder")
    x.add_argument("--out", required=True, help="folder to write into")
    x.add_argument("--single_file", action="store_true", help="also model.safetensors in the "
                   "original Stable Diffusion layout (SD 1.x)")
    x.add_argument("--half", action="store_true", help="store the single file in fp16 (~2 GB "
                   "for SD 1.5 instead of ~4 GB)")
    x.add_argument("--no_diffusers", action="store_true", help="skip the diffusers folder")
    x.add_argument("--base", default=None, help="base model of a LoRA run (default: from its "
                   "config.json)")
    x.add_argument("--push_to_hub", metavar="USER/NAME", default=None, help="upload the "
                   "export with a model card (token: HF_TOKEN or a notebook login)")
    x.add_argument("--public", action="store_true", help="make the Hub repository public "
                   "(default: private)")
    x.add_argument("--overwrite", action="store_true", help="replace the files of a model "
                   "already in --out")
    x.add_argument("--name", default=None, help="a LoRA run's kohya file name (AUTOMATIC1111 "
                   "lists it as <lora:NAME:1>); default: the run folder's name")
    x.set_defaults(func="cmd_export")


def _check_commands(sub) -> None:
    k = sub.add_parser("check-data", help="check your photos before training (blur, size, "
                       "duplicates, rotation, crop, ...); exit code 1 when there are problems")
    k.add_argument("folder", help="the folder of photos (instance_dir)")
    k.add_argument("--resolution", type=int, default=512, help="training resolution (512)")
    k.add_argument("--aspect_buckets", action="store_true",
                   help="check as a run with aspect_buckets trains: each photo's bucket, no "
                        "centre-crop warning")
    k.add_argument("--no_center_crop", action="store_true",
                   help="you train with center_crop=False (then the aspect ratio is not checked)")
    k.add_argument("--grid", default=None, help="write a thumbnail grid with the flags here (PNG)")
    k.add_argument("--fix", default=None, metavar="OUT_DIR",
                   help="write upright, flattened copies of the usable photos into OUT_DIR")
    k.set_defaults(func="cmd_check_data")
    tk = sub.add_parser("check-token", help="is the identifier one rare token for the model? "
                        "suggests rare ones; exit code 1 when it is not")
    tk.add_argument("identifier", help="the rare word that will name your subject, e.g. zshq")
    tk.add_argument("--model", default=TrainConfig.pretrained_model_name_or_path,
                    help="the base model (hub id or folder) whose tokenizer decides")
    tk.add_argument("--class_noun", default="", help="your class noun (dog, person, ...)")
    tk.add_argument("--suggest", type=int, default=5, help="how many alternatives (5)")
    tk.set_defaults(func="cmd_check_token")


def _evaluate_command(sub) -> None:
    ev = sub.add_parser("evaluate", help="score a run against its base model: subject "
                        "fidelity (DINO), prompt fidelity (CLIP-T), class drift (PRES), "
                        "diversity; the toy world's exact oracle for toy runs")
    ev.add_argument("run", help="a training output_dir")
    ev.add_argument("--scorer", default="auto", choices=("auto", "toy", "models"),
                    help="toy: the toy world's exact oracle; models: DINO + CLIP (auto: toy "
                         "for the toy base model)")
    ev.add_argument("--prompts", type=int, default=25, help="how many of the paper's 25 prompts")
    ev.add_argument("--per_prompt", type=int, default=2, help="pictures per prompt (2)")
    ev.add_argument("--n_class", type=int, default=8, help="class-prompt pictures (8)")
    ev.add_argument("--seed", type=int, default=1000, help="first seed (1000)")
    ev.add_argument("--dino", default=None, help="DINO model id or folder (facebook/dino-vits16)")
    ev.add_argument("--clip", default=None,
                    help="CLIP model id or folder (openai/clip-vit-base-patch32)")
    ev.set_defaults(func="cmd_evaluate")


def _demo_and_toy_commands(sub) -> None:
    d = sub.add_parser("demo", help="the whole DreamBooth run on a small offline model, on CPU")
    d.add_argument("--out", default="demo-output", help="output folder (default demo-output/)")
    d.add_argument("--steps", type=int, default=None, help="training steps (default: the demo's)")
    d.add_argument("--no-prior", action="store_true",
                   help="train without prior preservation, to see the class drift")
    d.add_argument("--step_mode", default="one_pass", choices=("one_pass", "two_pass", "auto"),
                   help="how each step runs: one pass (the faster, default) or two (the same "
                        "gradient, the T4 trick)")
    d.add_argument("--overwrite", action="store_true", help="replace an earlier demo's output")
    d.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    d.set_defaults(func="cmd_demo")
    toy = sub.add_parser("toy", help="the CPU toy world: pretrain its base model, its photos")
    toy_sub = toy.add_subparsers(dest="toy_command", required=True)
    tp = toy_sub.add_parser("pretrain", help="train the toy base model from scratch (CPU, ~50 min)")
    tp.add_argument("--out", default="toy-base-model", help="where to save the model")
    tp.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    tp.add_argument("--images", type=int, default=20000, help="pretraining pictures (20000)")
    tp.add_argument("--vae-steps", type=int, default=500, help="VAE steps, batch 32 (500)")
    tp.add_argument("--unet-steps", type=int, default=4000, help="UNet steps, batch 64 (4000)")
    tph = toy_sub.add_parser("photos", help="write the toy subject's photos into a folder")
    tph.add_argument("out", help="folder to write into")
    toy.set_defaults(func="cmd_toy")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # the handlers load torch and diffusers: only now, so `--help` and mistakes are quick
        from . import commands
        with warnings.catch_warnings():
            warnings.showwarning = _one_line_warning(args.command, warnings.showwarning)
            return getattr(commands, args.func)(args)
    except DreamkitError as e:
        if args.debug:
            raise
        print(f"dreamkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the output went to a pipe that closed early (`| head`)
        return 0
    except KeyboardInterrupt:
        print(f"dreamkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug or a case no check foresaw: one line, the traceback kept
        if args.debug:
            raise
        log = _write_traceback(args.command)
        first = str(e).splitlines()[0][:200] if str(e) else ""
        print(f"dreamkit {args.command}: unexpected error: {type(e).__name__}: {first} "
              f"(traceback in {log}; --debug shows it here)", file=sys.stderr)
        return 1


def _one_line_warning(command: str, default):
    """dreamkit's own warnings (core.callbacks.warn: what a function says when no run's
    callbacks listen) as one line on stderr, as the command's errors are; others as Python
    shows them."""
    def show(message, category, filename, lineno, file=None, line=None):
        if category is UserWarning and f"{os.sep}dreamkit{os.sep}" in filename:
            text = str(message)
            print(f"dreamkit {command}: {'' if text.startswith('warning') else 'warning: '}"
                  f"{text}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    return show


def _write_traceback(command: str) -> Path:
    """The traceback of an unexpected error, in a file a bug report can attach."""
    import tempfile
    import traceback

    fd, name = tempfile.mkstemp(prefix=f"dreamkit-{command}-", suffix=".log")
    with os.fdopen(fd, "w") as f:
        f.write(f"dreamkit {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
    return Path(name)


if __name__ == "__main__":
    sys.exit(main())
