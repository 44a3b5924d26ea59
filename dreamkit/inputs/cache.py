"""What the UNet is fed each step: latents of the batch's images and the text states of its
prompts, computed each step or once.

Latent caching (`cache_latents`): without it each step runs the VAE encoder on the batch (SD
1.5's VAE: 84 M weights and large activations at 512 px). The photos do not change during
training, so their latent distributions (mean and spread) can be computed once; each step then
draws a fresh sample from them, exactly as `vae.encode(x).latent_dist.sample()` would, and the
VAE goes back to the CPU until sampling needs it.

Text states: while the text encoder is frozen, each prompt is encoded once and kept
(`precompute_text_embeddings` encodes them all before step 1 and then moves the frozen
encoder(s) off the GPU); while it trains, they are computed with gradients every step.
"""

from __future__ import annotations

import torch

from ..models.loading import offload_text_encoders, text_states
from ..models.sdxl import added_cond
from .photos import _normalise

__all__ = ["LatentCache", "StepInputs"]


class LatentCache:
    def __init__(self, vae, dataset, device, dtype, batch_size: int = 4, offload: bool = True):
        self.vae_scale = vae.config.scaling_factor
        self.parts = {}
        with torch.no_grad():
            for name, images in (("instance", dataset.instance), ("class", dataset.classes)):
                means, stds = [], []
                for i in range(0, len(images), batch_size):
                    x = torch.stack([_normalise(u8) for u8 in images[i:i + batch_size]])
                    dist = vae.encode(x.to(device, dtype)).latent_dist
                    means.append(dist.mean.float())
                    stds.append(dist.std.float())
                if means:
                    self.parts[name] = (torch.cat(means), torch.cat(stds))
        if offload and torch.device(device).type != "cpu":
            vae.to("cpu")  # back when samples are drawn

    def sample(self, batch) -> torch.Tensor:
        """Latents for a batch (instance rows, then class rows), scaled like the loop's."""
        rows = [("instance", batch["instance_index"])]
        if "class_index" in batch:
            rows.append(("class", batch["class_index"]))
        picked = [(self.parts[name][0][idx], self.parts[name][1][idx]) for name, idx in rows]
        mean = torch.cat([m for m, _ in picked])
        std = torch.cat([s for _, s in picked])
        # one draw for the whole batch, as DiagonalGaussianDistribution.sample() makes it
        return (mean + std * torch.randn(mean.shape, device=mean.device, dtype=mean.dtype)) \
            * self.vae_scale


class StepInputs:
    """batch -> (latents, text states, SDXL's added conditions, number of instance rows)."""

    def __init__(self, config, comps, dataset, device, dtype):
        self.comps, self.device, self.dtype = comps, device, dtype
        self.resolution = config.resolution
        self.latent_cache = LatentCache(comps.vae, dataset, device, dtype) \
            if config.cache_latents else None
        self.text_cache = {}  # prompt -> text-encoder states, while the encoder is frozen
        if config.precompute_text_embeddings and not config.train_text_encoder:
            every = list(dict.fromkeys(dataset.instance_captions + dataset.class_prompts))
            text_states(comps, every, len(every), device, self.text_cache, False)
            offload_text_encoders(comps, device)

    def __call__(self, batch, text_encoder_trains: bool):
        comps, device = self.comps, self.device
        pixels, prompts = batch["pixel_values"], batch["prompts"]
        n = len(prompts)
        if "class_pixel_values" in batch:  # instance rows first, then class rows
            pixels = torch.cat([pixels, batch["class_pixel_values"]])
            prompts = prompts + batch["class_prompts"]
        with torch.no_grad():
            if self.latent_cache is not None:
                latents = self.latent_cache.sample(batch).to(device)
            else:
                latents = comps.vae.encode(pixels.to(device, self.dtype)).latent_dist.sample() \
                    .float() * comps.vae.config.scaling_factor
        text = text_states(comps, prompts, n, device, self.text_cache, text_encoder_trains)
        added = added_cond(comps, prompts, device, self.text_cache, self.resolution) \
            if comps.is_sdxl else None
        return latents, text, added, n
