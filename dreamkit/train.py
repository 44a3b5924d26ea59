"""The DreamBooth training loop: one loop, two step modes, extras on switches.

Read `dreambooth_backward` first: it is one DreamBooth step. Then `train`, which prepares the
data and models, and calls that step `max_train_steps` times.

The two step modes give the same gradient (tests/test_train.py checks it):
- one_pass: instance and class latents in one batch, one forward, one backward
  (what diffusers' train_dreambooth.py does). Fastest.
- two_pass: forward+backward on the instance half, then on the class half; gradients add up in
  `.grad` before the one optimizer step (the seed tutorial's trick for a T4). Only one half's
  activations are alive at a time, which lowers the peak where activations dominate (LoRA,
  high resolutions); for a full SD 1.5 UNet at 512 px weights and gradients dominate and it does
  not (benchmarks/RESULTS.md). `step_mode="auto"` picks accordingly.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .callbacks import Callback, ProgressBar, StepInfo
from .config import TrainConfig
from .data import DreamBoothDataset, collate, find_images
from .errors import DreamkitError
from .loss import denoising_loss, diffusion_target, dreambooth_loss
from .models import Components, build_pipeline, freeze, load_components
from .prior import generate_class_images
from .sample import save_sample_grid
from .viewer import plot_losses

__all__ = ["StepLosses", "TrainResult", "choose_step_mode", "dreambooth_backward",
           "encode_prompts", "train"]


@dataclass
class StepLosses:
    loss: float
    instance_loss: float
    prior_loss: float | None


@dataclass
class TrainResult:
    output_dir: Path
    model_dir: Path | None
    step_mode: str
    history: list = field(default_factory=list)
    unet: torch.nn.Module | None = None
    num_processes: int = 1


def choose_step_mode(config: TrainConfig) -> tuple[str, str]:
    """Resolve step_mode='auto' into a mode and the reason for it."""
    if config.step_mode != "auto":
        return config.step_mode, "set by step_mode"
    if not config.with_prior_preservation:
        return "one_pass", "no prior preservation: there is only one batch"
    return "one_pass", ("full UNet: weights and gradients dominate memory, so two backward "
                        "passes save nothing and cost ~15% time (benchmarks/RESULTS.md)")


def dreambooth_backward(unet, noise_scheduler, latents, encoder_hidden_states, noise, timesteps,
                        n_instance: int, prior_loss_weight: float = 1.0, mode: str = "one_pass",
                        backward=None, no_sync=contextlib.nullcontext) -> StepLosses:
    """One DreamBooth step up to (not including) the optimizer: losses and gradients.

    Rows [:n_instance] of the inputs are the subject's photos, the rest (if any) class images.
    `backward` is `accelerator.backward` in training (loss scaling, accumulation);
    `no_sync` keeps the first pass's gradients local under DDP so only one all-reduce runs.
    """
    backward = backward or torch.Tensor.backward
    n = n_instance
    has_prior = latents.shape[0] > n
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)  # forward diffusion q(x_t | x_0)
    target = diffusion_target(noise_scheduler, latents, noise, timesteps)

    if mode == "one_pass" or not has_prior:
        pred = unet(noisy, timesteps, encoder_hidden_states).sample
        instance_loss = denoising_loss(pred[:n], target[:n])
        prior_loss = denoising_loss(pred[n:], target[n:]) if has_prior else None
        loss = dreambooth_loss(instance_loss, prior_loss, prior_loss_weight)
        backward(loss)
    elif mode == "two_pass":
        with no_sync():
            pred = unet(noisy[:n], timesteps[:n], encoder_hidden_states[:n]).sample
            instance_loss = denoising_loss(pred, target[:n])
            backward(instance_loss)
        del pred  # free the instance half's activations before the class half runs
        pred = unet(noisy[n:], timesteps[n:], encoder_hidden_states[n:]).sample
        prior_loss = denoising_loss(pred, target[n:])
        backward(prior_loss_weight * prior_loss)  # adds onto the instance gradients in .grad
        loss = dreambooth_loss(instance_loss.detach(), prior_loss.detach(), prior_loss_weight)
    else:
        raise ValueError(f"step_mode={mode!r}: choose one_pass or two_pass")
    return StepLosses(_value(loss), _value(instance_loss),
                      None if prior_loss is None else _value(prior_loss))


def _value(t: torch.Tensor) -> float:
    # Meta tensors (memory estimates) have shapes but no values.
    return float("nan") if t.is_meta else t.item()


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts, device, cache: dict | None = None):
    """Prompt strings -> text-encoder hidden states; cached, since the encoder is frozen."""
    cache = {} if cache is None else cache
    for p in dict.fromkeys(prompts):
        if p not in cache:
            ids = tokenizer(p, padding="max_length", max_length=tokenizer.model_max_length,
                            truncation=True, return_tensors="pt").input_ids.to(device)
            cache[p] = text_encoder(ids)[0]
    return torch.cat([cache[p] for p in prompts])


def _check_output_dir(out: Path, overwrite: bool) -> None:
    if (out / "model_index.json").exists() and not overwrite:
        raise DreamkitError(f"output_dir={str(out)!r} already holds a trained model; choose a new "
                            f"output_dir, or pass overwrite=True (--overwrite) to replace it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise DreamkitError(f"output_dir={str(out)!r} is not writable ({e.strerror}); choose a "
                            f"folder you can write to") from None


def _prepare_class_images(config, comps, accelerator) -> list:
    class_dir = Path(config.resolved_class_dir)
    if accelerator.is_main_process:
        pipe = build_pipeline(comps)
        # Move only: casting the UNet to fp16 here would round the weights we then train.
        # Autocast runs it in fp16 on a GPU all the same.
        pipe.to(accelerator.device)
        pipe.set_progress_bar_config(disable=True)
        with accelerator.autocast():
                generate_class_images(pipe, config.resolved_class_prompt, class_dir,
                                  config.num_class_images, seed=config.seed,
                                  batch_size=config.sample_batch_size,
                                  num_inference_steps=config.class_inference_steps,
                                  guidance_scale=config.guidance_scale,
                                  resolution=config.resolution)
        del pipe
    accelerator.wait_for_everyone()
    return find_images(class_dir, setting="class_dir").images[:config.num_class_images]


def train(config: TrainConfig, callbacks: list[Callback] | None = None, *,
          overwrite: bool = False, components: Components | None = None) -> TrainResult:
    """Fine-tune the UNet on the subject's photos; write the model, samples and history."""
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
    if accelerator.is_main_process:
        _check_output_dir(out, overwrite)
        config.save(out / "config.json")
    callbacks = list(callbacks) if callbacks is not None else [ProgressBar()]
    if not accelerator.is_main_process:
        callbacks = []
    set_seed(config.seed)
    mode, why = choose_step_mode(config)

    scan = find_images(config.instance_dir, setting="instance_dir")
    if accelerator.is_main_process:
        print(f"instance_dir: {scan.summary()}")
    instance = scan.images
    comps = components or load_components(config.pretrained_model_name_or_path, config.revision,
                                          config.variant)
    device = accelerator.device
    # Frozen parts run in the mixed-precision dtype to save memory; trained weights stay fp32.
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(config.mixed_precision,
                                                                       torch.float32)
    freeze(comps.vae, comps.text_encoder)
    comps.vae.to(device, weight_dtype)
    comps.text_encoder.to(device, weight_dtype)
    with_prior = config.with_prior_preservation and config.prior_loss_weight > 0
    class_images = _prepare_class_images(config, comps, accelerator) \
        if with_prior else []

    dataset = DreamBoothDataset(instance, config.resolved_instance_prompt, config.resolution,
                                class_images, config.resolved_class_prompt, config.center_crop)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=config.train_batch_size, shuffle=True, collate_fn=collate,
        generator=torch.Generator().manual_seed(config.seed))
    unet = comps.unet
    unet.requires_grad_(True).train()
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    params = [p for p in unet.parameters() if p.requires_grad]
    lr = config.learning_rate
    if config.scale_lr:
        lr *= config.train_batch_size * config.gradient_accumulation_steps * accelerator.num_processes
    optimizer = torch.optim.AdamW(params, lr=lr,
                                  betas=(config.adam_beta1, config.adam_beta2),
                                  weight_decay=config.adam_weight_decay, eps=config.adam_epsilon)
    lr_scheduler = get_scheduler(
        config.lr_scheduler, optimizer=optimizer,
        num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=config.max_train_steps * accelerator.num_processes)
    unet, optimizer, loader, lr_scheduler = accelerator.prepare(unet, optimizer, loader,
                                                                lr_scheduler)

    for cb in callbacks:
        cb.on_train_start(config, mode, why)
    history, cache, step, t0 = [], {}, 0, time.time()
    scale = comps.vae.config.scaling_factor
    n_timesteps = comps.noise_scheduler.config.num_train_timesteps
    while step < config.max_train_steps:
        for batch in loader:
            t_step = time.time()
            with accelerator.accumulate(unet):
                pixels, prompts = batch["pixel_values"], batch["prompts"]
                if "class_pixel_values" in batch:  # instance rows first, then class rows
                    pixels = torch.cat([pixels, batch["class_pixel_values"]])
                    prompts = prompts + batch["class_prompts"]
                with torch.no_grad():
                    latents = comps.vae.encode(pixels.to(device, weight_dtype)).latent_dist.sample()
                    latents = latents.float() * scale
                text = encode_prompts(comps.tokenizer, comps.text_encoder, prompts, device, cache)
                noise = torch.randn_like(latents)
                timesteps = torch.randint(0, n_timesteps, (latents.shape[0],), device=device)
                losses = dreambooth_backward(
                    unet, comps.noise_scheduler, latents, text.float(), noise, timesteps,
                    n_instance=len(batch["prompts"]), prior_loss_weight=config.prior_loss_weight,
                    mode=mode, backward=accelerator.backward,
                    no_sync=lambda: accelerator.no_sync(unet))
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            if not accelerator.sync_gradients:
                continue
            step += 1
            info = StepInfo(step, config.max_train_steps, losses.loss, losses.instance_loss,
                            losses.prior_loss, lr_scheduler.get_last_lr()[0],
                            time.time() - t_step, time.time() - t0)
            history.append(info.as_dict())
            for cb in callbacks:
                cb.on_step(info)
            if config.sample_every and step % config.sample_every == 0 and step < config.max_train_steps:
                _samples(config, comps, accelerator, unet, step, callbacks)
            if step >= config.max_train_steps:
                break

    accelerator.wait_for_everyone()
    trained = accelerator.unwrap_model(unet)
    model_dir = None
    if accelerator.is_main_process:
        _samples(config, comps, accelerator, unet, step, callbacks)
        # The run folder itself becomes a diffusers model folder (as in diffusers' script), so
        # DiffusionPipeline.from_pretrained(output_dir) loads it; our files sit beside.
        model_dir = out
        build_pipeline(comps, unet=trained).save_pretrained(model_dir)
        (out / "history.json").write_text(json.dumps(history, indent=1))
        plot_losses(history, out / "loss.png")
    result = TrainResult(out, model_dir, mode, history, trained, accelerator.num_processes)
    for cb in callbacks:
        cb.on_train_end(result)
    accelerator.end_training()
    return result


def _samples(config, comps, accelerator, unet, step, callbacks):
    if not accelerator.is_main_process:
        return
    trained = accelerator.unwrap_model(unet)
    trained.eval()
    path = Path(config.output_dir) / "samples" / f"step_{step:05d}.png"
    with accelerator.autocast():
        images = save_sample_grid(build_pipeline(comps, unet=trained), config, path)
    trained.train()
    for cb in callbacks:
        cb.on_samples(step, images, path)
