"""The DreamBooth training loop: one loop, two step modes, extras on switches.

Read `train` top to bottom: it names its stages, and each stage is a function of the module
that owns that job:

    start_run            training/run.py     processes, photos, the run folder, resume point
    load_components      models/loading.py   tokenizer, text encoder, VAE, UNet, scheduler
    place_for_training   models/loading.py   frozen parts frozen, everything on the device
    prepare_class_images inputs/prior.py     the frozen model draws the class images (§3.3)
    build_dataset        inputs/photos.py    photos + captions, each paired with class images
    prepare_trainables   training/optim.py   UNet or LoRA (+ text encoder), optimizer, schedule
    StepInputs           inputs/cache.py     latents and text states per batch, cached or not
    _loop / _step        here                `dreambooth_backward` (step.py), then the update
    _finish              here                samples, the model folder, history and loss curves

Every stage reads and fills one object, the `Run` (run.py): the config, the models, the
trainer, the step's inputs and `progress` (step, epoch, history).

The loop never prints and never plans: what it has to say goes to the callbacks'
`on_message` (the CLI prints it, a notebook shows it), and `step_mode="auto"` is decided from
the memory plan that a face (CLI, notebook) made with dreamkit.planning and passed in.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..core.callbacks import Callback, Events, ProgressBar, StepInfo
from ..core.concepts import class_jobs
from ..core.config import TrainConfig
from ..core.errors import DreamkitError
from ..inputs.cache import StepInputs
from ..inputs.loader import build_dataset, dataset_notes, make_loader
from ..inputs.prior import prepare_class_images
from ..models.loading import (
    Components,
    build_pipeline,
    load_components,
    offload_text_encoders,
    place_for_training,
)
from ..models.lora import save_lora
from ..models.portable import halve_weights, make_portable
from ..outputs.sample import save_sample_grid
from ..outputs.viewer import plot_losses
from ..storage.checkpoint import remove_checkpoints, save_checkpoint
from ..storage.lock import heartbeat
from .bounds import check_against_model
from .loss import divergence, min_snr_weights
from .optim import prepare_trainables
from .run import (
    Run,
    check_finite,
    describe_inputs,
    kept_checkpoint_note,
    resume_state,
    save_final,
    start_run,
)
from .rundir import hold_run_folder
from .step import choose_step_mode, dreambooth_backward

__all__ = ["TrainResult", "train"]


@dataclass
class TrainResult:
    output_dir: Path
    model_dir: Path | None
    step_mode: str
    history: list = field(default_factory=list)
    unet: torch.nn.Module | None = None
    num_processes: int = 1
    text_encoder: torch.nn.Module | None = None  # set when it was trained
    step_mode_reason: str = ""


def train(config: TrainConfig, callbacks: list[Callback] | None = None, *, plan=None,
          overwrite: bool = False, components: Components | None = None) -> TrainResult:
    """Fine-tune the UNet (and optionally the text encoder) on the subject's photos.

    Writes the model, samples, history and checkpoints into config.output_dir. With
    config.resume='auto' a run that was cut off continues from its newest checkpoint and ends
    with the same weights as a run that never stopped. `plan` (dreamkit.planner.plan(config))
    lets step_mode='auto' choose from measured peaks, and the memory line after step 1 compare
    with the estimate. `callbacks` default to a progress bar.
    """
    config.check_ready()
    callbacks = [ProgressBar()] if callbacks is None else callbacks
    with hold_run_folder(config.output_dir, report=Events(callbacks).say):  # one run a folder
        return _train(config, callbacks, plan, overwrite, components)


def _train(config, callbacks, plan, overwrite, components) -> TrainResult:
    run = start_run(config, overwrite, callbacks, plan)
    config = run.config  # max_train_steps from num_train_epochs (core/steps.py)
    run.comps = components or load_components(
        config.pretrained_model_name_or_path, config.revision, config.variant,
        config.allow_pickle, config.pretrained_vae_model_name_or_path, report=run.events.say)
    check_against_model(config, run.comps, run.out)  # sizes the model makes absurd, the disk
    run.dtype = place_for_training(run.comps, config, run.device)
    describe_inputs(run)  # photos found, identifier warnings: before any wait
    jobs = class_jobs(run.concepts, config.prior_preservation)
    class_sets = prepare_class_images(config, run.comps, run.accelerator, jobs)
    dataset = build_dataset(config, run.concepts, run.scans, class_sets)
    for line in dataset_notes(dataset, config.resolution):  # small photos, own captions
        run.events.say(line)
    run.trainer, run.loader = prepare_trainables(config, run.comps, run.accelerator,
                                                 make_loader(dataset, config), run.dtype,
                                                 report=run.events.say)
    run.progress = resume_state(run)
    run.inputs = StepInputs(config, run.comps, dataset, run.device, run.dtype)
    run.step_mode, run.step_mode_reason = choose_step_mode(config, plan)
    run.events.on_train_start(config, run.step_mode, run.step_mode_reason)
    _loop(run)
    return _finish(run)


def _loop(run: Run) -> None:
    """max_train_steps optimizer steps, epoch after epoch, from where `run.progress` stands."""
    config, trainer, progress = run.config, run.trainer, run.progress
    t0, accelerator = time.time(), run.accelerator
    while progress.step < config.max_train_steps:
        if trainer.text_encoder is not None and not trainer.text_encoder_trains(progress.step):
            trainer.text_encoder.requires_grad_(False).eval()  # text_encoder_steps reached
        run.loader.set_epoch(progress.epoch)
        batches = accelerator.skip_first_batches(run.loader, progress.batch_index) \
            if progress.batch_index else run.loader  # a resumed run starts mid-epoch
        for batch in batches:
            t_step = time.time()
            progress.batch_index += 1
            with accelerator.accumulate(trainer.unet):
                losses = _step(run, batch)
            if not accelerator.sync_gradients:
                continue  # gradient accumulation: no update yet
            progress.step += 1
            info = StepInfo(progress.step, config.max_train_steps, losses.loss,
                            losses.instance_loss, losses.prior_loss,
                            trainer.lr_scheduler.get_last_lr()[0], time.time() - t_step,
                            time.time() - t0)
            progress.history.append(info.as_dict())
            run.events.on_step(info)
            _after_step(run)
            if progress.step >= config.max_train_steps:
                break
        else:  # the epoch ran to its end
            progress.epoch, progress.batch_index = progress.epoch + 1, 0


def _step(run: Run, batch):
    """One DreamBooth step: noise the batch's latents at random timesteps, the losses and
    gradients in the run's step mode (step.py), then the optimizer update."""
    config, trainer, accelerator = run.config, run.trainer, run.accelerator
    step = run.progress.step
    latents, text, added, n = run.inputs(batch, trainer.text_encoder_trains(step))
    noise = torch.randn_like(latents)
    if config.noise_offset:  # one shift per image and channel: lets the mean brightness move
        noise = noise + config.noise_offset * torch.randn(
            (*latents.shape[:2], 1, 1), device=latents.device, dtype=latents.dtype)
    scheduler = run.comps.noise_scheduler
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],),
                              device=run.device)
    weights = min_snr_weights(scheduler, timesteps, config.snr_gamma) \
        if config.snr_gamma is not None else None
    losses = dreambooth_backward(
        trainer.unet, scheduler, latents, text, noise, timesteps, n_instance=n,
        prior_loss_weight=config.prior_loss_weight, mode=run.step_mode, weights=weights,
        backward=trainer.backward, added_cond=added,
        no_sync=lambda: _no_sync(accelerator, trainer.models().values()))
    problem = divergence(losses.loss, step + 1, config)
    if problem:  # stop before the optimizer writes NaN into the weights
        raise DreamkitError(f"{problem}; {kept_checkpoint_note(run, step)}")
    if accelerator.sync_gradients:
        accelerator.clip_grad_norm_(trainer.params, config.max_grad_norm)
    trainer.optimizer.step()
    trainer.lr_scheduler.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    return losses


def _after_step(run: Run) -> None:
    """After an update: the GPU memory actually used (step 1), checkpoints, samples."""
    config, step = run.config, run.progress.step
    heartbeat(run.out)  # the run lock says this run is alive (now and then)
    if step == 1 and torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**30
        estimate = f" (the plan estimated {run.plan.total:.1f} GiB with context and slack)" \
            if run.plan is not None else ""
        run.events.say(f"measured after step 1: {peak:.1f} GiB allocated at the peak{estimate}")
    if config.checkpointing_steps and step % config.checkpointing_steps == 0:
        if run.main:
            trainer = run.trainer
            models = {k: run.accelerator.unwrap_model(m) for k, m in trainer.models().items()}
            check_finite(run, models, step)  # never a checkpoint of broken weights
            ckpt = save_checkpoint(run.out, models, trainer.optimizer, trainer.lr_scheduler,
                                   run.accelerator.scaler, run.progress, config.to_json(),
                                   config.checkpoints_total_limit)
            run.events.on_checkpoint(step, ckpt.path)
        run.accelerator.wait_for_everyone()
    if config.sample_every and step % config.sample_every == 0 and step < config.max_train_steps:
        _samples(run, step)


def _finish(run: Run) -> TrainResult:
    """Last samples; the run folder becomes a model folder (as in diffusers' script, so
    DiffusionPipeline.from_pretrained(output_dir) loads it), with history and loss curves."""
    config, comps, accelerator = run.config, run.comps, run.accelerator
    step, history = run.progress.step, run.progress.history
    accelerator.wait_for_everyone()
    unet = accelerator.unwrap_model(run.trainer.unet)
    te = accelerator.unwrap_model(comps.text_encoder)
    if run.main:
        check_finite(run, {"unet": unet, "text_encoder": te}, step)
        _samples(run, step)
        if config.use_lora:  # the adapters only; load_pipeline puts them on the base model
            about = {"base_model": config.pretrained_model_name_or_path,
                     "resolution": config.resolution, "steps": step}  # kohya's metadata
            save_final(run, lambda folder: save_lora(
                folder, unet, te if config.train_text_encoder else None, name=run.out.name,
                sdxl=comps.is_sdxl, about=about))
        else:
            save_final(run, lambda folder: (
                build_pipeline(comps, unet=unet, text_encoder=te).save_pretrained(folder),
                config.final_dtype == "fp16" and halve_weights(folder),  # save_precision
                make_portable(folder)))  # names older releases read, files others can read
        (run.out / "history.json").write_text(json.dumps(history, indent=1))
        plot_losses(history, run.out / "loss.png")
        if not config.keep_checkpoints:  # the model holds the final weights: free the space
            freed = remove_checkpoints(run.out)
            if freed:
                run.events.say(f"removed the checkpoints ({freed / 1e9:.1f} GB): the model "
                               f"holds the final weights (keep_checkpoints=True keeps them)")
    result = TrainResult(run.out, run.out if run.main else None, run.step_mode, history, unet,
                         accelerator.num_processes, te if config.train_text_encoder else None,
                         run.step_mode_reason)
    run.events.on_train_end(result)
    accelerator.end_training()
    return result


@contextlib.contextmanager
def _no_sync(accelerator, models):
    """Keep the first pass's gradients local in every trained model (one all-reduce per step)."""
    with contextlib.ExitStack() as stack:
        for m in models:
            stack.enter_context(accelerator.no_sync(m))
        yield


def _samples(run: Run, step: int) -> None:
    """Sample grids at fixed seeds (and the callbacks' look at the model, e.g. scoring); with
    num_sample_images=0 no grid, and no pipeline unless a callback looks at the model."""
    looks = any(type(cb).on_model is not Callback.on_model for cb in run.events.callbacks)
    if not run.main or not (run.config.num_sample_images or looks):
        return
    config, comps, accelerator = run.config, run.comps, run.accelerator
    unet = accelerator.unwrap_model(run.trainer.unet)
    te = accelerator.unwrap_model(comps.text_encoder)
    was_training = te.training
    unet.eval()
    te.eval()
    path = Path(config.output_dir) / "samples" / f"step_{step:05d}.png"
    comps.vae.to(accelerator.device)  # it may wait on the CPU (cache_latents)
    te.to(accelerator.device)  # so may the frozen text encoder(s)
    if comps.is_sdxl:
        comps.text_encoder_2.to(accelerator.device)
    pipe = build_pipeline(comps, unet=unet, text_encoder=te)
    with accelerator.autocast():
        if config.num_sample_images:
            images = save_sample_grid(pipe, config, path)
            run.events.on_samples(step, images, path)
        run.events.on_model(step, pipe)
    if config.cache_latents and accelerator.device.type != "cpu":
        comps.vae.to("cpu")
    if config.precompute_text_embeddings and not config.train_text_encoder:
        offload_text_encoders(comps, accelerator.device)
    unet.train()
    te.train(was_training)
