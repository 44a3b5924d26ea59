"""The run folder: checked before anything is written, resumed where it should be, one run at
a time.

A finished model or an unfinished run is never replaced by accident (`prepare_run_dir`); the
checkpoint to resume from is found (`resume_point`) and must come from the same kind of run
(`refuse_other_settings`: another base model, LoRA against full training or another rank
would load wrong weights); and the folder is held by one run at a time (`hold_run_folder`,
storage/lock.py), so a cell run twice cannot mix two runs' checkpoints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from ..core.callbacks import warn
from ..core.errors import DreamkitError
from ..models.lora import LORA_WEIGHTS, has_trained_model
from ..storage.checkpoint import (
    CHECKPOINT_DIR,
    Checkpoint,
    checkpoint_config,
    checkpoint_problem,
    find_checkpoints,
    latest_checkpoint,
)
from ..storage.lock import run_lock

__all__ = ["prepare_run_dir", "resume_point", "refuse_other_settings", "hold_run_folder",
           "SAME_RUN_SETTINGS"]

# What a checkpoint's weights depend on: resuming with another value would load the wrong
# tensors (or none). Other settings (steps, learning rate, samples) may change on resume.
SAME_RUN_SETTINGS = ("pretrained_model_name_or_path", "use_lora", "lora_rank", "use_dora",
                     "lora_target_modules", "train_text_encoder")


@contextmanager
def hold_run_folder(folder, report=warn):
    """The run lock of `folder` for the `with` block, on the main process (under torchrun the
    others follow it); the folder is made first, with a clear line if it cannot be."""
    if int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    folder = Path(folder)
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DreamkitError(f"output_dir={str(folder)!r} is not writable ({e.strerror}); choose "
                            f"a folder you can write to") from None
    try:
        with run_lock(folder, report=report):
            yield
    finally:
        if made and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a start refused before anything was written leaves nothing


def refuse_other_settings(ckpt: Checkpoint | None, config) -> None:
    """A checkpoint resumes only a run of the same kind, and only forwards: name what differs,
    and the fix."""
    if ckpt is None:
        return
    if ckpt.step > config.max_train_steps:
        raise DreamkitError(f"resume: checkpoint {ckpt.path.name} is at step {ckpt.step}, past "
                            f"max_train_steps={config.max_train_steps}; raise max_train_steps "
                            f"to train on from it, or start fresh in a new output_dir (or pass "
                            f"overwrite=True / --overwrite)")
    saved = checkpoint_config(ckpt)
    mine = config.with_absolute_paths().to_dict()
    if saved.get("pretrained_model_name_or_path") and Path(
            str(saved["pretrained_model_name_or_path"])).expanduser().exists():
        saved["pretrained_model_name_or_path"] = str(
            Path(saved["pretrained_model_name_or_path"]).expanduser().resolve())
    differ = [f"{k}={saved[k]!r} there, {mine[k]!r} now" for k in SAME_RUN_SETTINGS
              if k in saved and saved[k] != mine[k]]
    if differ:
        raise DreamkitError(f"resume: checkpoint {ckpt.path.name} was made with other settings "
                            f"({'; '.join(differ)}), so its weights do not fit this run; use "
                            f"the same settings to continue it, or start fresh in a new "
                            f"output_dir (or pass overwrite=True / --overwrite)")


def _finished_step(out: Path) -> int:
    """The last step of the finished run whose model is in `out` (0 if unknown)."""
    try:
        history = json.loads((out / "history.json").read_text())
        return int(history[-1]["step"]) if history else 0
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def prepare_run_dir(out, overwrite: bool, resume: str, max_steps: int,
                    report=warn) -> Checkpoint | None:
    """Check the run folder before anything is written; return the checkpoint to resume from.

    Nothing of a previous run is touched unless `overwrite` says so: a finished model or an
    unfinished run's checkpoints stop a fresh start with a message that says what to do.
    """
    out = Path(out)
    has_model = has_trained_model(out)
    ckpt = resume_point(out, resume, report)
    finished = _finished_step(out) if has_model else 0
    if resume and finished >= max_steps and not overwrite:
        raise DreamkitError(f"output_dir={str(out)!r} holds a run finished at step {finished}; "
                            f"raise max_train_steps to train on from its last checkpoint, or "
                            f"choose a new output_dir")
    if ckpt is not None:
        return ckpt
    if resume and has_model and not overwrite:
        raise DreamkitError(f"output_dir={str(out)!r} holds a run finished at step {finished} "
                            f"whose checkpoints were removed at its end (keep_checkpoints="
                            f"False), so it cannot train on; choose a new output_dir, or pass "
                            f"overwrite=True to start again (keep_checkpoints=True keeps them)")
    return _fresh_start(out, overwrite, has_model)


def resume_point(out, resume: str, report=warn) -> Checkpoint | None:
    """The checkpoint `resume` points at, if any: 'auto' or 'latest' (the newest whose files
    match their SHA-256; a damaged one is skipped with a message), a checkpoint folder, or
    diffusers' form 'checkpoint-N' (the checkpoint of step N); '' starts fresh."""
    out = Path(out)
    ckpt = None
    if resume in ("auto", "latest"):
        ckpt = latest_checkpoint(out, report, verify=True)
        if ckpt is None:
            report(f"resume={resume!r}: no complete checkpoint in {out}, starting from step 0")
    elif resume:
        named = re.fullmatch(r"checkpoint-(\d+)", Path(resume).name)
        path = Path(resume).expanduser()
        if named and not path.is_dir():  # diffusers' name for dreamkit's step_NNNNNN
            path = out / CHECKPOINT_DIR / f"step_{int(named.group(1)):06d}"
        why = checkpoint_problem(path, content=True) if path.is_dir() else "no such folder"
        if why:
            raise DreamkitError(f"resume={resume!r} cannot be used: {why}; give a folder such as "
                                f"{out / CHECKPOINT_DIR / 'step_000250'}, 'checkpoint-250', "
                                f"or 'auto'")
        ckpt = Checkpoint(path, int(json.loads((path / "progress.json").read_text())["step"]))
    return ckpt


def _fresh_start(out: Path, overwrite: bool, has_model: bool) -> None:
    unfinished = find_checkpoints(out, report=lambda msg: None)
    if not overwrite:
        if has_model:
            raise DreamkitError(f"output_dir={str(out)!r} already holds a trained model; choose "
                                f"a new output_dir, or pass overwrite=True (--overwrite) to "
                                f"replace it")
        if unfinished:
            raise DreamkitError(f"output_dir={str(out)!r} holds an unfinished run (checkpoint at "
                                f"step {unfinished[-1].step}); pass resume='auto' (--resume auto) "
                                f"to continue it, or overwrite=True to start again")
    else:  # starting again: old checkpoints, or an old model's marker, would mislead
        if (out / CHECKPOINT_DIR).is_dir():
            shutil.rmtree(out / CHECKPOINT_DIR)
        for marker in ("model_index.json", LORA_WEIGHTS):
            (out / marker).unlink(missing_ok=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise DreamkitError(f"output_dir={str(out)!r} is not writable ({e.strerror}); choose a "
                            f"folder you can write to") from None
    return None
