"""One DreamBooth step, in one of two modes that give the same gradient.

DreamBooth's loss is the denoising loss on the subject's photos plus prior_loss_weight times
the same loss on class images (DreamBooth §3.3). tests/test_train.py checks both modes agree:
- one_pass: instance and class latents in one batch, one forward, one backward
  (what diffusers' train_dreambooth.py does). Fastest.
- two_pass: forward+backward on the instance half, then on the class half; gradients add up in
  `.grad` before the one optimizer step (the seed tutorial's trick for a T4). Only one half's
  activations are alive at a time, which lowers the peak where activations dominate (LoRA,
  SDXL, high resolutions); for a full SD 1.5 UNet at 512 px weights and gradients dominate and
  it does not (benchmarks/RESULTS.md). `step_mode="auto"` picks from the planner's measured
  peaks of both modes for the actual configuration.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from ..core.config import TrainConfig
from .loss import denoising_loss, diffusion_target, dreambooth_loss

__all__ = ["StepLosses", "choose_step_mode", "settled_step_mode", "mode_from_peaks", "dreambooth_backward",
           "TWO_PASS_MIN_SAVING"]


@dataclass
class StepLosses:
    loss: float
    instance_loss: float
    prior_loss: float | None


# Two passes cost ~15% more time per step (benchmarks/RESULTS.md), so `auto` takes them only
# where they lower the planned peak by at least this much.
TWO_PASS_MIN_SAVING = 0.05


def settled_step_mode(config: TrainConfig) -> tuple[str, str] | None:
    """The step mode the settings alone decide, with why; None when step_mode='auto' is left
    to compare the planned peaks of both modes. The one place `auto` is decided: the loop
    (choose_step_mode), the planner and the faces ask it."""
    if config.step_mode != "auto":
        return config.step_mode, "set by step_mode"
    if not config.prior_preservation:
        return "one_pass", "no prior preservation: there is only one batch"
    if config.optimizer_in_backward:
        return "one_pass", "optimizer_in_backward steps during the one backward pass"
    return None


def choose_step_mode(config: TrainConfig, plan=None) -> tuple[str, str]:
    """The mode train() uses, and why: what the settings settle, else the plan's choice.

    `plan` is this config's dreamkit.planner.MemoryPlan: the planner ran the real step in both
    modes on the meta device and chose with `mode_from_peaks`. The loop does not plan itself;
    the faces (CLI, notebooks) make the plan and pass it to train().
    """
    settled = settled_step_mode(config)
    if settled is not None:
        return settled
    if plan is None or not getattr(plan, "step_mode", None):
        return "one_pass", ("step_mode='auto' without a memory plan: one pass, the faster; "
                            "pass plan=dreamkit.planner.plan(config) to decide from the peaks")
    return plan.step_mode, plan.step_mode_reason


def mode_from_peaks(one_pass: float, two_pass: float) -> tuple[str, str]:
    """Two passes where they lower the peak (GiB) enough to pay for their time; else one."""
    saving = 1 - two_pass / one_pass
    figures = f"peak {one_pass:.2f} GiB in one pass, {two_pass:.2f} GiB in two"
    if saving >= TWO_PASS_MIN_SAVING:
        return "two_pass", f"two passes lower the peak by {saving:.0%} ({figures})"
    change = f"raise the peak by {-saving:.0%}" if saving < 0 else \
        f"lower the peak by {saving:.0%} only"
    return "one_pass", f"two passes would {change} ({figures}), and one pass is ~15% faster"


def dreambooth_backward(unet, noise_scheduler, latents, encoder_hidden_states, noise, timesteps,
                        n_instance: int, prior_loss_weight: float = 1.0, mode: str = "one_pass",
                        backward=None, no_sync=contextlib.nullcontext,
                        added_cond: dict | None = None, weights=None) -> StepLosses:
    """One DreamBooth step up to (not including) the optimizer: losses and gradients.

    Rows [:n_instance] of the inputs are the subject's photos, the rest (if any) class images.
    `encoder_hidden_states` is one tensor for all rows, or an (instance, class) pair when the
    text encoder trains (each half then has its own graph to backpropagate).
    `backward` is `accelerator.backward` in training (loss scaling, accumulation);
    `no_sync` keeps the first pass's gradients local under DDP so only one all-reduce runs.
    `added_cond`: SDXL's extra conditions per row (dreamkit.sdxl), split like the rest.
    `weights`: each row's loss weight (Min-SNR, loss.min_snr_weights), or None.
    """
    backward = backward or torch.Tensor.backward
    n = n_instance
    has_prior = latents.shape[0] > n
    if isinstance(encoder_hidden_states, (tuple, list)):
        text_instance, text_class = encoder_hidden_states
        if mode == "one_pass":
            encoder_hidden_states = torch.cat([text_instance, text_class])
    else:
        text_instance, text_class = encoder_hidden_states[:n], encoder_hidden_states[n:]
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)  # forward diffusion q(x_t | x_0)
    target = diffusion_target(noise_scheduler, latents, noise, timesteps)

    def rows(part: slice) -> dict | None:
        return None if added_cond is None else {k: v[part] for k, v in added_cond.items()}

    def w(part: slice):
        return None if weights is None else weights[part]

    if mode == "one_pass" or not has_prior:
        pred = unet(noisy, timesteps, encoder_hidden_states, added_cond_kwargs=added_cond).sample
        instance_loss = denoising_loss(pred[:n], target[:n], w(slice(None, n)))
        prior_loss = denoising_loss(pred[n:], target[n:], w(slice(n, None))) if has_prior \
            else None
        loss = dreambooth_loss(instance_loss, prior_loss, prior_loss_weight)
        backward(loss)
    elif mode == "two_pass":
        with no_sync():
            pred = unet(noisy[:n], timesteps[:n], text_instance,
                        added_cond_kwargs=rows(slice(None, n))).sample
            instance_loss = denoising_loss(pred, target[:n], w(slice(None, n)))
            backward(instance_loss)
        del pred  # free the instance half's activations before the class half runs
        pred = unet(noisy[n:], timesteps[n:], text_class,
                    added_cond_kwargs=rows(slice(n, None))).sample
        prior_loss = denoising_loss(pred, target[n:], w(slice(n, None)))
        backward(prior_loss_weight * prior_loss)  # adds onto the instance gradients in .grad
        loss = dreambooth_loss(instance_loss.detach(), prior_loss.detach(), prior_loss_weight)
    else:
        raise ValueError(f"step_mode={mode!r}: choose one_pass or two_pass")
    return StepLosses(_value(loss), _value(instance_loss),
                      None if prior_loss is None else _value(prior_loss))


def _value(t: torch.Tensor) -> float:
    # Meta tensors (memory estimates) have shapes but no values.
    return float("nan") if t.is_meta else t.item()
