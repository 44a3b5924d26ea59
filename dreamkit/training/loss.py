"""The DreamBooth loss, in one place.

Diffusion training: take a clean latent x0, pick a timestep t, add noise ε to get x_t, and ask
the UNet to predict the target from x_t, t and the prompt. The target is the noise ε itself
("epsilon" models such as SD 1.5) or the velocity v = √ᾱ·ε − √(1−ᾱ)·x0 ("v_prediction"
models such as SD 2.x 768), as the scheduler's config says. The loss is the mean squared error.

DreamBooth (§3.3, eq. 2) adds the same loss on class images made by the frozen model, weighted
by λ = prior_loss_weight:  L = L_instance + λ · L_prior.

Min-SNR weighting (`snr_gamma`, Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
Weighting Strategy") weighs each sample by its timestep's signal-to-noise ratio SNR = ᾱ/(1−ᾱ):
w = min(SNR, γ)/SNR for epsilon models, min(SNR, γ)/(SNR+1) for v-prediction (the paper's form;
diffusers' DreamBooth script adds 1 to the epsilon weight instead). Nearly clean timesteps
(high SNR) are easy and would otherwise dominate the gradient.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["diffusion_target", "denoising_loss", "dreambooth_loss", "divergence", "snr",
           "min_snr_weights"]


def diffusion_target(noise_scheduler, latents, noise, timesteps) -> torch.Tensor:
    """What the UNet should predict, by the scheduler's prediction type."""
    kind = noise_scheduler.config.prediction_type
    if kind == "epsilon":
        return noise
    if kind == "v_prediction":
        return noise_scheduler.get_velocity(latents, noise, timesteps)
    raise ValueError(f"prediction_type={kind!r} is not supported; this trainer handles "
                     f"'epsilon' and 'v_prediction' models")


def snr(noise_scheduler, timesteps) -> torch.Tensor:
    """Signal-to-noise ratio ᾱ_t / (1 − ᾱ_t) of each timestep, in fp64 (near t = 0, 1 − ᾱ is
    ~1e-4 and fp32 would lose its digits), on the CPU: a few numbers per step."""
    alpha_bar = noise_scheduler.alphas_cumprod.double().cpu()[timesteps.cpu()]
    return alpha_bar / (1 - alpha_bar)


def min_snr_weights(noise_scheduler, timesteps, gamma: float) -> torch.Tensor:
    """Each sample's loss weight under Min-SNR-γ, by the scheduler's prediction type."""
    s = snr(noise_scheduler, timesteps)
    clipped = torch.minimum(s, torch.full_like(s, gamma))
    weights = clipped / (s + 1) if noise_scheduler.config.prediction_type == "v_prediction" \
        else clipped / s
    return weights.float().to(timesteps.device)


def denoising_loss(model_pred, target, weights=None) -> torch.Tensor:
    """Mean squared error, computed in fp32 even when the UNet ran in fp16; with `weights`
    (one per sample, Min-SNR) the mean of each sample's error times its weight."""
    if weights is None:
        return F.mse_loss(model_pred.float(), target.float(), reduction="mean")
    per_sample = F.mse_loss(model_pred.float(), target.float(), reduction="none")
    per_sample = per_sample.mean(dim=list(range(1, per_sample.ndim)))
    return (per_sample * weights.to(per_sample.device)).mean()


def dreambooth_loss(instance_loss, prior_loss=None, prior_loss_weight: float = 1.0):
    """L = L_instance + λ · L_prior (prior term only with prior preservation)."""
    if prior_loss is None:
        return instance_loss
    return instance_loss + prior_loss_weight * prior_loss


def divergence(loss: float, step: int, config) -> str | None:
    """None while the loss is finite; else what happened and the likely cause.

    A NaN or infinite loss poisons the weights at the next update, so the loop stops before it
    (and adds which checkpoint is kept: the step's math knows no files).
    """
    if math.isfinite(loss):
        return None
    cause = ("fp16 overflow is likely: try mixed_precision='bf16' on a GPU that has it, or 'no'"
             if config.precision.arithmetic == "fp16" else
             f"the learning rate is likely too high: try learning_rate="
             f"{config.learning_rate / 10:g}")
    return (f"the loss became {loss} at step {step} (learning_rate={config.learning_rate:g}, "
            f"mixed_precision={config.mixed_precision!r}); {cause}. Training stopped before "
            f"the weights were changed")
