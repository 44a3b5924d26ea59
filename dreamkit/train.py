"""The DreamBooth training loop: one loop, two step modes, extras on switches.

Read `dreambooth_backward` (dreamkit/step.py) first: it is one DreamBooth step, in either step
mode. Then `train`, which prepares the data and models, and calls that step `max_train_steps`
times; LoRA, SDXL, the optimizer switches, caching and checkpoints are switches on this loop.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .cache import LatentCache
from .callbacks import Callback, ProgressBar, StepInfo
from .config import TrainConfig
from .checkpoint import (TrainingState, load_checkpoint, prepare_run_dir, resume_point,
                         save_checkpoint)
from .data import DreamBoothDataset, EpochShuffle, collate, dataset_notes, find_images
from .errors import DreamkitError
from .lora import TEXT_ENCODER_TARGETS, UNET_TARGETS, add_lora, save_lora
from .loss import stop_if_diverged
from .optim import make_optimizer
from .models import (Components, build_pipeline, encode_prompts, freeze, load_components,
                     text_states)
from .prior import prepare_class_images
from .concepts import class_jobs
from .tokens import check_identifier
from .prompts import photo_captions
from .sdxl import added_cond
from .sample import save_sample_grid
from .step import StepLosses, choose_step_mode, dreambooth_backward
from .viewer import plot_losses

__all__ = ["StepLosses", "TrainResult", "choose_step_mode", "dreambooth_backward",
           "encode_prompts", "train"]


@dataclass
class TrainResult:
    output_dir: Path
    model_dir: Path | None
    step_mode: str
    history: list = field(default_factory=list)
    unet: torch.nn.Module | None = None
    num_processes: int = 1
    text_encoder: torch.nn.Module | None = None  # set when it was trained


def train(config: TrainConfig, callbacks: list[Callback] | None = None, *,
          overwrite: bool = False, components: Components | None = None) -> TrainResult:
    """Fine-tune the UNet (and optionally the text encoder) on the subject's photos.

    Writes the model, samples, history and checkpoints into config.output_dir. With
    config.resume='auto' a run that was cut off continues from its newest checkpoint and ends
    with the same weights as a run that never stopped.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers.optimization import get_scheduler

    config.check_ready()
    out = Path(config.output_dir)
    if config.mixed_precision != "no" and not torch.cuda.is_available():
        raise DreamkitError(f"mixed_precision={config.mixed_precision!r} needs a GPU; on the CPU "
                            f"use 'no' (fp16/bf16 run hundreds of times slower on most CPUs)")
    # cpu=True when there is no accelerator: that is what lets accelerate form a multi-process
    # CPU (gloo) group under torchrun; otherwise each process would train alone.
    no_gpu = not torch.cuda.is_available() and not torch.backends.mps.is_available()
    accelerator = Accelerator(gradient_accumulation_steps=config.gradient_accumulation_steps,
                              mixed_precision=config.mixed_precision, cpu=no_gpu)
    main = accelerator.is_main_process
    concepts = config.resolved_concepts
    many = len(concepts) > 1
    scans = [find_images(c.instance_dir, setting=f"concepts[{i}].instance_dir" if many
                         else "instance_dir")  # before anything is written
             for i, c in enumerate(concepts)]
    # The main process alone checks and prepares the folder (two would race on it); the others
    # then look up the same checkpoint.
    resume_from = prepare_run_dir(out, overwrite, config.resume, config.max_train_steps) \
        if main else None
    accelerator.wait_for_everyone()
    if not main:
        resume_from = resume_point(out, config.resume, report=lambda m: None)
    if main:
        config.save(out / "config.json")
    callbacks = list(callbacks) if callbacks is not None else [ProgressBar()]
    if not main:
        callbacks = []
    set_seed(config.seed)
    mode, why = choose_step_mode(config)

    if main and torch.cuda.is_available():  # preflight: say whether it fits, in one line
        from .planner import plan
        preflight = plan(config, suggest=False)
        print(preflight.line())
        torch.cuda.reset_peak_memory_stats()
    comps = components or load_components(config.pretrained_model_name_or_path, config.revision,
                                          config.variant, config.allow_pickle,
                                          config.pretrained_vae_model_name_or_path)
    if comps.is_sdxl and config.train_text_encoder:
        raise DreamkitError("train_text_encoder=True: with SDXL dreamkit keeps both text "
                            "encoders frozen; set train_text_encoder=False (use_lora=True is "
                            "the usual SDXL DreamBooth recipe)")
    if main:
        for i, (c, scan) in enumerate(zip(concepts, scans)):
            label = f"concepts[{i}] {c.instance_prompt!r}, {c.instance_dir}" if many \
                else "instance_dir"
            print(f"{label}: {scan.summary()}")
            check = check_identifier(comps.tokenizer, c.identifier, c.class_noun)
            if not check.ok:
                print("warning: " + check.text())
    device = accelerator.device
    # Frozen parts run in the mixed-precision dtype to save memory; trained weights stay fp32.
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(config.mixed_precision,
                                                                       torch.float32)
    freeze(comps.vae, comps.text_encoder, *([comps.text_encoder_2] if comps.is_sdxl else []))
    comps.vae.to(device, weight_dtype)
    if comps.is_sdxl:
        comps.text_encoder_2.to(device, weight_dtype)
    train_te = config.train_text_encoder
    comps.text_encoder.to(device, torch.float32 if train_te else weight_dtype)
    with_prior = config.with_prior_preservation and config.prior_loss_weight > 0
    jobs = class_jobs(concepts, with_prior)
    class_sets = prepare_class_images(config, comps, accelerator, jobs)
    # Every subject's photos in one list; each photo is paired with class images of its own
    # class (DreamBooth §3.3, per concept).
    instance, defaults, captions, class_images, class_prompts, pools = [], [], [], [], [], []
    folders = {}  # class_dir -> indices in class_images (shared folders are loaded once)
    for d, prompt, _ in jobs:
        folders[d] = list(range(len(class_images), len(class_images) + len(class_sets[d])))
        class_images += class_sets[d]
        class_prompts += [prompt] * len(class_sets[d])
    for c, scan in zip(concepts, scans):
        instance += scan.images
        defaults += [c.instance_prompt] * len(scan.images)
        captions += photo_captions(scan.images, c.instance_prompt, c.identifier, c.class_noun) \
            if config.use_captions else [c.instance_prompt] * len(scan.images)
        pools += [folders.get(c.class_dir, [])[:c.num_class_images]] * len(scan.images)
    dataset = DreamBoothDataset(instance, defaults, config.resolution, class_images,
                                class_prompts, config.center_crop, captions=captions,
                                class_pools=pools if with_prior else None)
    if main:
        for line in dataset_notes(dataset, config.resolution):
            print(line)
    sampler = EpochShuffle(len(dataset), config.seed)
    # The loader gets its own generator: starting an epoch would otherwise draw from the global
    # RNG, which a resumed run (restarting mid-epoch) would draw from at a different moment.
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.train_batch_size,
                                         sampler=sampler, collate_fn=collate,
                                         generator=torch.Generator().manual_seed(config.seed))
    unet, te = comps.unet, comps.text_encoder
    if config.use_lora:  # the frozen UNet may be half precision; the adapters are fp32
        unet.to(device, weight_dtype)
        unet_params = add_lora(unet, config.lora_rank, config.lora_alpha or config.lora_rank,
                               config.lora_target_modules or UNET_TARGETS)
    else:
        unet_params = list(unet.requires_grad_(True).parameters())
    unet.train()
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    lr = config.learning_rate
    if config.scale_lr:
        lr *= (config.train_batch_size * config.gradient_accumulation_steps
               * accelerator.num_processes)
    groups = [{"params": unet_params, "lr": lr}]
    if train_te:
        te_params = add_lora(te, config.lora_rank, config.lora_alpha or config.lora_rank,
                             TEXT_ENCODER_TARGETS) if config.use_lora \
            else list(te.requires_grad_(True).parameters())
        te.train()
        groups.append({"params": te_params, "lr": config.text_encoder_lr or lr})
    params = [p for g in groups for p in g["params"]]
    optimizer = make_optimizer(groups, config.replace(learning_rate=lr),
                               report=print if main else (lambda m: None))
    lr_scheduler = get_scheduler(
        config.lr_scheduler, optimizer=optimizer,
        num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=config.max_train_steps * accelerator.num_processes)
    if train_te:
        unet, te, optimizer, loader, lr_scheduler = accelerator.prepare(
            unet, te, optimizer, loader, lr_scheduler)
        comps.text_encoder = te
    else:  # DDP refuses a model with nothing to train
        unet, optimizer, loader, lr_scheduler = accelerator.prepare(unet, optimizer, loader,
                                                                    lr_scheduler)
    trained = {"unet": unet, **({"text_encoder": te} if train_te else {})}
    state = TrainingState(step=0, epoch=0, batch_index=0, history=[])
    if resume_from is not None:
        state = load_checkpoint(resume_from, {k: accelerator.unwrap_model(m)
                                              for k, m in trained.items()},
                                optimizer, lr_scheduler, accelerator.scaler)
        if main:
            print(f"resuming from step {state.step} of {config.max_train_steps} "
                  f"({resume_from.path})")

    def te_trains(step: int) -> bool:
        return train_te and (not config.text_encoder_steps or step < config.text_encoder_steps)

    latent_cache = LatentCache(comps.vae, dataset, device, weight_dtype) \
        if config.cache_latents else None
    cache = {}  # prompt -> text-encoder states, while the encoder is frozen
    if config.precompute_text_embeddings and not train_te:
        every = list(dict.fromkeys(dataset.instance_captions + dataset.class_prompts))
        text_states(comps, every, len(every), device, cache, False)
        _offload_text_encoders(comps, device)
    for cb in callbacks:
        cb.on_train_start(config, mode, why)
    t0, step = time.time(), state.step
    scale = comps.vae.config.scaling_factor
    n_timesteps = comps.noise_scheduler.config.num_train_timesteps
    while step < config.max_train_steps:
        if train_te and not te_trains(step) and te.training:
            te.requires_grad_(False).eval()  # text_encoder_steps reached: freeze, cache again
        loader.set_epoch(state.epoch)
        epoch_batches = accelerator.skip_first_batches(loader, state.batch_index) \
            if state.batch_index else loader
        for batch in epoch_batches:
            t_step = time.time()
            state.batch_index += 1
            with accelerator.accumulate(unet):
                pixels, prompts = batch["pixel_values"], batch["prompts"]
                n = len(prompts)
                if "class_pixel_values" in batch:  # instance rows first, then class rows
                    pixels = torch.cat([pixels, batch["class_pixel_values"]])
                    prompts = prompts + batch["class_prompts"]
                with torch.no_grad():
                    if latent_cache is not None:
                        latents = latent_cache.sample(batch).to(device)
                    else:
                        latents = comps.vae.encode(pixels.to(device, weight_dtype)
                                                   ).latent_dist.sample().float() * scale
                text = text_states(comps, prompts, n, device, cache, te_trains(step))
                added = added_cond(comps, prompts, device, cache, config.resolution) \
                    if comps.is_sdxl else None
                noise = torch.randn_like(latents)
                timesteps = torch.randint(0, n_timesteps, (latents.shape[0],), device=device)
                losses = dreambooth_backward(
                    unet, comps.noise_scheduler, latents, text, noise, timesteps, n_instance=n,
                    prior_loss_weight=config.prior_loss_weight, mode=mode,
                    backward=accelerator.backward, added_cond=added,
                    no_sync=lambda: _no_sync(accelerator, trained.values()))
                stop_if_diverged(losses.loss, step + 1, config, out)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            step = state.step = step + 1
            info = StepInfo(step, config.max_train_steps, losses.loss, losses.instance_loss,
                            losses.prior_loss, lr_scheduler.get_last_lr()[0],
                            time.time() - t_step, time.time() - t0)
            state.history.append(info.as_dict())
            if step == 1 and main and torch.cuda.is_available():
                print(f"measured after step 1: {torch.cuda.max_memory_allocated() / 2**30:.1f} "
                      f"GiB allocated at the peak (estimate {preflight.total:.1f} GiB with "
                      f"context and slack)")
            for cb in callbacks:
                cb.on_step(info)
            if config.checkpointing_steps and step % config.checkpointing_steps == 0:
                if main:
                    ckpt = save_checkpoint(out, {k: accelerator.unwrap_model(m)
                                                 for k, m in trained.items()},
                                           optimizer, lr_scheduler, accelerator.scaler, state,
                                           config.to_json(), config.checkpoints_total_limit)
                    for cb in callbacks:
                        cb.on_checkpoint(step, ckpt.path)
                accelerator.wait_for_everyone()
            if (config.sample_every and step % config.sample_every == 0
                    and step < config.max_train_steps):
                _samples(config, comps, accelerator, unet, step, callbacks)
            if step >= config.max_train_steps:
                break
        else:  # the epoch ran to its end
            state.epoch, state.batch_index = state.epoch + 1, 0

    accelerator.wait_for_everyone()
    unet_out = accelerator.unwrap_model(unet)
    te_out = accelerator.unwrap_model(te)
    model_dir = None
    if main:
        _samples(config, comps, accelerator, unet, step, callbacks)
        # The run folder itself becomes a diffusers model folder (as in diffusers' script), so
        # DiffusionPipeline.from_pretrained(output_dir) loads it; our files sit beside.
        model_dir = out
        if config.use_lora:  # the adapters only; load_pipeline puts them on the base model
            save_lora(out, unet_out, te_out if train_te else None, sdxl=comps.is_sdxl)
        else:
            build_pipeline(comps, unet=unet_out, text_encoder=te_out).save_pretrained(model_dir)
        (out / "history.json").write_text(json.dumps(state.history, indent=1))
        plot_losses(state.history, out / "loss.png")
    result = TrainResult(out, model_dir, mode, state.history, unet_out, accelerator.num_processes,
                         te_out if train_te else None)
    for cb in callbacks:
        cb.on_train_end(result)
    accelerator.end_training()
    return result


@contextlib.contextmanager
def _no_sync(accelerator, models):
    """Keep the first pass's gradients local in every trained model (one all-reduce per step)."""
    with contextlib.ExitStack() as stack:
        for m in models:
            stack.enter_context(accelerator.no_sync(m))
        yield


def _samples(config, comps, accelerator, unet, step, callbacks):
    if not accelerator.is_main_process:
        return
    trained = accelerator.unwrap_model(unet)
    te = accelerator.unwrap_model(comps.text_encoder)
    was_training = te.training
    trained.eval()
    te.eval()
    path = Path(config.output_dir) / "samples" / f"step_{step:05d}.png"
    comps.vae.to(accelerator.device)  # it may wait on the CPU (cache_latents)
    te.to(accelerator.device)  # so may the frozen text encoder(s)
    if comps.is_sdxl:
        comps.text_encoder_2.to(accelerator.device)
    pipe = build_pipeline(comps, unet=trained, text_encoder=te)
    with accelerator.autocast():
        images = save_sample_grid(pipe, config, path)
        for cb in callbacks:
            cb.on_samples(step, images, path)
            cb.on_model(step, pipe)
    if config.cache_latents and accelerator.device.type != "cpu":
        comps.vae.to("cpu")
    if config.precompute_text_embeddings and not config.train_text_encoder:
        _offload_text_encoders(comps, accelerator.device)
    trained.train()
    te.train(was_training)


def _offload_text_encoders(comps, device) -> None:
    """Frozen text encoders whose prompts are all cached wait on the CPU (GPU memory)."""
    if torch.device(device).type != "cpu":
        comps.text_encoder.to("cpu")
        if comps.is_sdxl:
            comps.text_encoder_2.to("cpu")
