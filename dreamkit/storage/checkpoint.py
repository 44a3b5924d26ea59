"""Checkpoints that survive a disconnect, and exact resume.

A free Colab session can end at any second, including in the middle of writing a file. So a
checkpoint is written into a hidden temporary folder, every file is flushed to disk, a manifest
listing the files and their sizes is written last, and only then is the folder renamed to
`checkpoints/step_000123`. A folder without a manifest, or whose files do not match it, is
incomplete: `find_checkpoints` passes over it with a message and the previous one is used.

A checkpoint holds everything the next step depends on, so a resumed run ends with the same
weights as one that was never interrupted (bit for bit on CPU; tests/test_checkpoint.py):
the trained weights (safetensors), the optimizer and learning-rate scheduler, the fp16 gradient
scaler, the random number generators (torch, CUDA, numpy, python), the step and the position in
the data, the loss history and the config.

Only tensors, numbers and strings are stored, and they are read back with
`torch.load(weights_only=True)`, which refuses pickled code.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.callbacks import warn
from ..core.errors import DreamkitError
from .files import fsync_write, sha256_of
from .rng import restore_rng, rng_state

__all__ = ["Checkpoint", "TrainingState", "save_checkpoint", "load_checkpoint", "CHECKPOINT_DIR",
           "find_checkpoints", "latest_checkpoint", "prune_checkpoints", "check_free_disk",
           "trained_weights", "checkpoint_config", "checkpoint_problem", "clear_leftovers"]

CHECKPOINT_DIR = "checkpoints"
_MANIFEST = "manifest.json"
_WEIGHTS = "trained.safetensors"  # keys "unet.<name>" and "text_encoder.<name>"


@dataclass
class TrainingState:
    """Where the loop stands: the step done, and the next batch of which epoch."""
    step: int
    epoch: int
    batch_index: int
    history: list


@dataclass
class Checkpoint:
    path: Path
    step: int


def check_free_disk(folder: Path, needed_bytes: int, what: str = "checkpoint") -> None:
    """Refuse to start a write that cannot finish (a full Drive leaves half files)."""
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise DreamkitError(
            f"output_dir={str(folder.parent if folder.name == CHECKPOINT_DIR else folder)!r} "
            f"has {free / 2**30:.2f} GiB free but the {what} needs about "
            f"{needed_bytes / 2**30:.2f} GiB; free space (on Drive: empty the bin), lower "
            f"checkpoints_total_limit, or choose another output_dir. Nothing of this {what} "
            f"was written")


def _trained_state(model) -> dict:
    """What a checkpoint must hold of `model`: all of it, or only the LoRA adapters (a few MB
    instead of the whole frozen UNet)."""
    state = model.state_dict()
    if hasattr(model, "peft_config"):
        state = {k: v for k, v in state.items() if "lora_" in k}
    return state


def save_checkpoint(out: Path, models: dict, optimizer, lr_scheduler, scaler,
                    state: TrainingState, config_json: str, keep: int = 2) -> Checkpoint:
    """Write checkpoint `step_<state.step>` atomically, then keep only the newest `keep`."""
    root = Path(out) / CHECKPOINT_DIR
    weights = {f"{name}.{k}": v.detach().to("cpu").contiguous()
               for name, model in models.items() for k, v in _trained_state(model).items()}
    opt_state = optimizer.state_dict()
    needed = sum(v.numel() * v.element_size() for v in weights.values())
    from torch.utils._pytree import tree_flatten
    needed += sum(t.numel() * t.element_size() for t in tree_flatten(opt_state)[0]
                  if torch.is_tensor(t))
    check_free_disk(root, int(needed * 1.05) + 2**20)

    try:
        return _write_checkpoint(root, weights, opt_state, lr_scheduler, scaler, state,
                                 config_json, keep)
    except OSError as e:  # Drive full (quota), unmounted, or gone: say so plainly
        kept = find_checkpoints(out, report=lambda m: None)
        raise DreamkitError(
            f"writing checkpoint step {state.step} into {root} failed ({e.strerror or e}); "
            f"Drive may be full or disconnected. " + (
                f"The checkpoint of step {kept[-1].step} is intact: free space or remount Drive "
                f"(dreamkit.env.mount_drive()), then run again with resume='auto'" if kept else
                "No checkpoint was written before: free space or remount Drive "
                "(dreamkit.env.mount_drive()), then start again")) from None


def _write_checkpoint(root, weights, opt_state, lr_scheduler, scaler, state, config_json,
                      keep) -> Checkpoint:
    from safetensors.torch import save as safetensors_bytes

    name = f"step_{state.step:06d}"
    tmp = root / f".tmp-{name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    sha = {_WEIGHTS: fsync_write(tmp / _WEIGHTS, lambda f: f.write(safetensors_bytes(weights))),
           "optimizer.pt": fsync_write(tmp / "optimizer.pt", lambda f: torch.save(opt_state, f))}
    extra = {"lr_scheduler": lr_scheduler.state_dict(), "rng": rng_state(),
             "scaler": scaler.state_dict() if scaler is not None else None}
    sha["state.pt"] = fsync_write(tmp / "state.pt", lambda f: torch.save(extra, f))
    meta = {"step": state.step, "epoch": state.epoch, "batch_index": state.batch_index,
            "history": state.history, "config": json.loads(config_json)}
    sha["progress.json"] = fsync_write(tmp / "progress.json",
                                        lambda f: f.write(json.dumps(meta).encode()))
    # sizes catch a cut-off write cheaply; the hashes, checked on resume, catch damage that
    # keeps the size (bit rot, a bad copy to or from Drive)
    files = {p.name: p.stat().st_size for p in tmp.iterdir()}
    fsync_write(tmp / _MANIFEST, lambda f: f.write(json.dumps({"files": files,
                                                                "sha256": sha}).encode()))
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)  # the moment the checkpoint becomes visible, complete
    prune_checkpoints(root.parent, keep)
    return Checkpoint(final, state.step)


def checkpoint_problem(path: Path, content: bool = False) -> str | None:
    """Why a checkpoint folder cannot be used, or None if it is complete. With `content`,
    every file is also hashed and compared with the SHA-256 written beside it (slower: the
    whole checkpoint is read; done for the one a run resumes from)."""
    manifest = path / _MANIFEST
    if not manifest.is_file():
        return "no manifest (the write was interrupted)"
    try:
        data = json.loads(manifest.read_text())
        files, hashes = dict(data["files"]), dict(data.get("sha256", {}))  # older: sizes only
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        return "its manifest is damaged"
    if not {_WEIGHTS, "progress.json"} <= set(files):  # a manifest not written by dreamkit
        return "its manifest does not list the weights and the progress"
    for name, size in files.items():
        f = path / name
        if not f.is_file():
            return f"{name} is missing"
        if f.stat().st_size != size:
            return f"{name} has {f.stat().st_size} bytes, the manifest says {size}"
        if content and name in hashes and sha256_of(f) != hashes[name]:
            return f"{name} is damaged (its SHA-256 differs from the one written with it)"
    return None


def find_checkpoints(out, report=warn) -> list[Checkpoint]:
    """Complete checkpoints of a run folder, oldest first; incomplete ones are reported."""
    root = Path(out) / CHECKPOINT_DIR
    found = []
    for path in sorted(root.glob("step_*")) if root.is_dir() else []:
        try:
            step = int(path.name.split("_", 1)[1])
        except ValueError:
            continue
        why = checkpoint_problem(path)
        if why:
            report(f"skipping checkpoint {path.name}: {why}")
            continue
        found.append(Checkpoint(path, step))
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(out, report=warn, verify: bool = False) -> Checkpoint | None:
    """The newest complete checkpoint; with `verify`, the newest whose files also match their
    SHA-256 (a damaged one is reported and the one before it is taken)."""
    for ckpt in reversed(find_checkpoints(out, report)):
        why = checkpoint_problem(ckpt.path, content=True) if verify else None
        if why is None:
            return ckpt
        report(f"skipping checkpoint {ckpt.path.name}: {why}; using the one before it")
    return None


def prune_checkpoints(out, keep: int) -> None:
    """Keep the newest `keep` complete checkpoints; remove older ones and leftovers.

    Crash-safe: a checkpoint is first renamed to a hidden trash name (one atomic step), then
    deleted; a kill in between leaves `.trash-*`, which the next prune (or start) removes,
    never a half-deleted checkpoint that looks like a real one.
    """
    root = Path(out) / CHECKPOINT_DIR
    clear_leftovers(out)
    if keep <= 0:
        return
    for old in find_checkpoints(out, report=lambda msg: None)[:-keep]:
        trash = root / f".trash-{old.path.name}"
        old.path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)


def remove_checkpoints(out) -> int:
    """Remove every checkpoint of a finished run (the same crash-safe way); bytes freed."""
    root = Path(out) / CHECKPOINT_DIR
    freed = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) if root.is_dir() else 0
    for old in find_checkpoints(out, report=lambda msg: None):
        trash = root / f".trash-{old.path.name}"
        old.path.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    clear_leftovers(out)
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    return freed


def clear_leftovers(out) -> None:
    """Remove what an interrupted write (.tmp-*) or prune (.trash-*) left behind."""
    root = Path(out) / CHECKPOINT_DIR
    for leftover in [*root.glob(".tmp-step_*"), *root.glob(".trash-step_*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def trained_weights(ckpt: Checkpoint) -> dict:
    """{part: state dict} of a checkpoint's trained weights ("unet", maybe "text_encoder")."""
    from safetensors.torch import load_file

    parts: dict = {}
    for key, value in load_file(str(Path(ckpt.path) / _WEIGHTS)).items():
        part, _, name = key.partition(".")
        parts.setdefault(part, {})[name] = value
    return parts


def checkpoint_config(ckpt: Checkpoint) -> dict:
    """The training settings a checkpoint was saved with (as TrainConfig fields)."""
    return json.loads((Path(ckpt.path) / "progress.json").read_text()).get("config", {})


def load_checkpoint(ckpt: Checkpoint, models: dict, optimizer, lr_scheduler,
                    scaler) -> TrainingState:
    """Put every saved state back; raise DreamkitError if the files do not load."""
    from safetensors.torch import load_file

    path = ckpt.path
    try:
        weights = load_file(str(path / _WEIGHTS))
        for name, model in models.items():
            prefix = name + "."
            part = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
            if not part:
                raise DreamkitError(f"checkpoint {path} holds no {name} weights; it was made by "
                                    f"a run with other settings. Start a new output_dir")
            # LoRA: only the adapters were saved; the frozen base comes from the model folder
            model.load_state_dict(part, strict=not hasattr(model, "peft_config"))
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
        extra = torch.load(path / "state.pt", weights_only=True)
        meta = json.loads((path / "progress.json").read_text())
    except DreamkitError:
        raise
    except Exception as e:  # damaged despite matching sizes: bit rot, a bad copy
        why = (str(e).strip().splitlines() or [""])[0][:160]  # size mismatches run to pages
        raise DreamkitError(f"checkpoint {path} cannot be read ({type(e).__name__}: {why}); "
                            f"delete that folder to resume from the one before") from None
    lr_scheduler.load_state_dict(extra["lr_scheduler"])
    if scaler is not None and extra["scaler"] is not None:
        scaler.load_state_dict(extra["scaler"])
    restore_rng(extra["rng"])
    return TrainingState(meta["step"], meta["epoch"], meta["batch_index"], meta["history"])
