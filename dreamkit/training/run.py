"""A training run: its processes, its folder, where it resumes, and what it tells the user.

`start_run` does everything that comes before the models: it makes the accelerator (one
process, or several under torchrun), lists the photos before anything is written, checks the
run folder (a finished model or an unfinished run is never replaced by accident), finds the
checkpoint to resume from, saves config.json and seeds every random generator. The loop's
messages go to `run.events` (dreamkit.callbacks): the main process's callbacks; the other
processes stay quiet.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError

from ..core.callbacks import Events
from ..core.concepts import class_jobs
from ..core.config import TrainConfig
from ..core.errors import DreamkitError
from ..core.steps import resolve_epochs
from ..inputs.buckets import bucket_sizes, nearest_bucket, upright_size
from ..inputs.cache import StepInputs
from ..inputs.photos import find_images
from ..models.loading import Components
from ..models.lora import LORA_WEIGHTS
from ..models.tokens import check_identifier
from ..storage.checkpoint import (
    Checkpoint,
    TrainingState,
    clear_leftovers,
    latest_checkpoint,
    load_checkpoint,
)
from .optim import Trainer
from .trackers import Tracking, tracker_settings
from .rundir import prepare_run_dir, refuse_other_settings, resume_point

# accelerate: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["Run", "start_run", "describe_inputs", "resume_state", "kept_checkpoint_note",
           "check_finite", "save_final"]


@dataclass
class Run:
    """One training run's state, in one place: `start_run` makes it, train()'s stages fill in
    the models, the trainer and the step's inputs, and the loop moves `progress`. Every stage
    of the loop takes the run, so a new loop feature adds a field here and nowhere else."""
    config: TrainConfig
    accelerator: object  # accelerate.Accelerator
    out: Path
    resume_from: Checkpoint | None
    concepts: list  # the run's subjects (config.resolved_concepts)
    scans: list  # the photos of each subject (data.ImageScan)
    events: Events
    plan: object = None  # the face's planning.MemoryPlan, if it made one
    comps: Components | None = None  # tokenizer(s), text encoder(s), VAE, UNet, scheduler
    dtype: object = None  # torch dtype of the frozen parts (config.precision)
    trainer: Trainer | None = None  # what trains, its optimizer and schedule
    loader: object = None  # the prepared DataLoader
    inputs: StepInputs | None = None  # batch -> latents and text states
    progress: TrainingState | None = None  # step, epoch, batch, history (what a checkpoint keeps)
    step_mode: str = ""  # one_pass or two_pass, and why (training/step.py)
    step_mode_reason: str = ""

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def device(self):
        return self.accelerator.device


def refuse_mixed_precision_on_cpu(config) -> None:
    """fp16/bf16 need a GPU (on most CPUs they run hundreds of times slower). Tests replace
    this to run the fp16 loop's wiring on the CPU, where accelerate then skips autocast."""
    if config.precision.mixed and not torch.cuda.is_available():
        raise DreamkitError(f"mixed_precision={config.mixed_precision!r} needs a GPU; on the CPU "
                            f"use 'no' (fp16/bf16 run hundreds of times slower on most CPUs)")


def forget_earlier_precision(mixed_precision: str) -> None:
    """A notebook that trained in fp32 and then trains in fp16 in the same kernel: accelerate
    keeps the first run's precision for the whole process and refuses another ("restart your
    runtime"). One process alone has nothing to keep in step, so its old state is dropped; under
    torchrun (several processes) it is left alone, where each launch is a fresh process anyway."""
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state  # accelerate's own store of the process-wide state
    if state and state.get("_mixed_precision") != mixed_precision \
            and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        AcceleratorState._reset_state()


def start_run(config, overwrite: bool, callbacks, plan=None) -> Run:
    """The accelerator, the photos, the checked run folder and the resume point."""
    from accelerate import Accelerator  # accelerate: heavy, imported when training
    from accelerate.utils import AutocastKwargs, GradScalerKwargs, set_seed

    refuse_mixed_precision_on_cpu(config)
    # cpu=True when there is no accelerator: that is what lets accelerate form a multi-process
    # CPU (gloo) group under torchrun; otherwise each process would train alone.
    no_gpu = not torch.cuda.is_available() and not torch.backends.mps.is_available()
    precision, handlers = config.precision, []  # core/precision.py decides; accelerate obeys
    if precision.dreamkit_scales_loss:
        handlers.append(GradScalerKwargs(enabled=False))
    if not precision.autocast_cache:
        handlers.append(AutocastKwargs(cache_enabled=False))
    forget_earlier_precision(config.mixed_precision)
    accelerator = Accelerator(gradient_accumulation_steps=config.gradient_accumulation_steps,
                              mixed_precision=config.mixed_precision, cpu=no_gpu,
                              kwargs_handlers=handlers,
                              **tracker_settings(config, Path(config.output_dir)))
    main = accelerator.is_main_process
    events = Events(callbacks if main else [])
    out = Path(config.output_dir)
    concepts = config.resolved_concepts
    many = len(concepts) > 1
    scans = [find_images(c.instance_dir, setting=f"concepts[{i}].instance_dir" if many
                         else "instance_dir")  # before anything is written
             for i, c in enumerate(concepts)]
    n_class = sum(num for _, _, num in class_jobs(concepts, config.prior_preservation))
    photos = [p for s in scans for p in s.images]
    buckets = [nearest_bucket(upright_size(p), bucket_sizes(config.resolution)) for p in photos] \
        if config.aspect_buckets and config.num_train_epochs else None
    config, epochs = resolve_epochs(config, len(photos), n_class, accelerator.num_processes,
                                    buckets)
    if epochs:
        events.say(epochs)
    # The main process alone checks and prepares the folder (two would race on it); the others
    # then look up the same checkpoint.
    if main:
        clear_leftovers(out)  # what a kill mid-write or mid-prune left
    resume_from = prepare_run_dir(out, overwrite, config.resume, config.max_train_steps,
                                  report=events.say) if main else None
    accelerator.wait_for_everyone()
    if not main:
        resume_from = resume_point(out, config.resume, report=lambda m: None)
    refuse_other_settings(resume_from, config)  # before anything loads
    if main:
        config.save(out / "config.json")
    set_seed(config.seed)
    if config.report_to != "none" and main:  # last, so it sees what the others measured
        events.callbacks.append(Tracking(accelerator, events, config))
    return Run(config, accelerator, out, resume_from, concepts, scans, events, plan)


def describe_inputs(run: Run) -> None:
    """Tell the user what training will use: photos per subject, identifier warnings."""
    many = len(run.concepts) > 1
    for i, (c, scan) in enumerate(zip(run.concepts, run.scans)):
        label = f"concepts[{i}] {c.instance_prompt!r}, {c.instance_dir}" if many \
            else "instance_dir"
        run.events.say(f"{label}: {scan.summary()}")
        check = check_identifier(run.comps.tokenizer, c.identifier, c.class_noun)
        if not check.ok:
            run.events.say("warning: " + check.text())


def resume_state(run: Run) -> TrainingState:
    """Step 0, or every state of the checkpoint the run resumes from put back."""
    if run.resume_from is None:
        return TrainingState(step=0, epoch=0, batch_index=0, history=[])
    trainer = run.trainer
    models = {k: run.accelerator.unwrap_model(m) for k, m in trainer.models().items()}
    state = load_checkpoint(run.resume_from, models, trainer.optimizer, trainer.lr_scheduler,
                            run.accelerator.scaler)
    run.events.say(f"resuming from step {state.step} of {run.config.max_train_steps} "
                   f"({run.resume_from.path})")
    return state


def kept_checkpoint_note(run: Run, step: int | None = None) -> str:
    """What is kept when training stops early, and, right after a resume, the likelier cause."""
    if run.resume_from is not None and step == run.resume_from.step:
        return (f"this is the first step after resuming from {run.resume_from.path}: that "
                f"checkpoint may be damaged; delete it to resume from the one before, or "
                f"start again with overwrite")
    done = latest_checkpoint(run.out, report=lambda m: None)
    return (f"the last good checkpoint (step {done.step}) is kept; resume='auto' continues from "
            f"it after the change" if done else "no checkpoint was written yet")


def check_finite(run: Run, models: dict, step: int) -> None:
    """Refuse to save weights that are NaN or infinite (an update can overflow after the
    last finite loss): an error that keeps the last good checkpoint instead of a broken model."""
    bad = [f"{part}.{name}" for part, model in models.items() if model is not None
           for name, p in model.named_parameters()
           if p.requires_grad and not torch.isfinite(p).all()]
    if bad:
        raise DreamkitError(f"after step {step} {len(bad)} trained tensor(s) hold NaN or "
                            f"infinite values (first: {bad[0]}), so no model was saved; the "
                            f"learning rate is likely too high; {kept_checkpoint_note(run)}")


def save_final(run: Run, write) -> None:
    """The final model, written by `write(folder)` into a hidden folder and moved into the run
    folder at the end (model_index.json or the LoRA file last: they mark a finished model).
    A crash or a full disk leaves the checkpoints and no half-written model."""
    tmp = run.out / ".tmp-model"
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        write(tmp)
        names = sorted(p.name for p in tmp.iterdir())
        markers = [n for n in names if n in ("model_index.json", LORA_WEIGHTS)]
        for name in [n for n in names if n not in markers] + markers:
            target = run.out / name
            if target.is_dir():
                shutil.rmtree(target)
            (tmp / name).replace(target)
        tmp.rmdir()
    except (OSError, SafetensorError) as e:  # disk or Drive full, read-only, unmounted
        shutil.rmtree(tmp, ignore_errors=True)
        why = getattr(e, "strerror", None) or str(e).splitlines()[0]
        raise DreamkitError(f"saving the final model into {run.out} failed ({why}): the disk "
                            f"or Drive may be full or read-only; nothing half-written is left; "
                            f"{kept_checkpoint_note(run)}") from None
