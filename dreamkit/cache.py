"""Latent caching: encode every photo and class image once, then keep the VAE off the GPU.

Without it each step runs the VAE encoder on the batch (SD 1.5's VAE: 84 M weights and large
activations at 512 px). The photos do not change during training, so their latent
distributions (mean and spread) can be computed once; each step then draws a fresh sample from
them, exactly as `vae.encode(x).latent_dist.sample()` would, and the VAE goes back to the CPU
until sampling needs it. On a GPU this saves its weights and activations and the encoder's time.
"""

from __future__ import annotations

import torch

__all__ = ["LatentCache"]


class LatentCache:
    def __init__(self, vae, dataset, device, dtype, batch_size: int = 4, offload: bool = True):
        from .data import _normalise

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
