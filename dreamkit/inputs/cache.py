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

__all__ = ["LatentCache", "BucketLatents", "StepInputs"]


class LatentCache:
    """Each image's latent distribution (mean, spread), encoded once; with `flip` also its
    mirror image's (the VAE is not mirror-symmetric, so a flipped latent is encoded, not
    mirrored)."""

    def __init__(self, vae, dataset, device, dtype, batch_size: int = 4, offload: bool = True,
                 flip: bool = False):
        self.vae_scale = vae.config.scaling_factor
        self.parts = {}
        with torch.no_grad():
            for name, images in (("instance", dataset.instance), ("class", dataset.classes)):
                for mirrored in (False, True) if flip else (False,):
                    means, stds = [], []
                    for i in range(0, len(images), batch_size):
                        x = torch.stack([_normalise(u8) for u8 in images[i:i + batch_size]])
                        x = x.flip(-1) if mirrored else x
                        dist = vae.encode(x.to(device, dtype)).latent_dist
                        means.append(dist.mean.float())
                        stds.append(dist.std.float())
                    if means:
                        self.parts[(name, mirrored)] = (torch.cat(means), torch.cat(stds))
        if offload and torch.device(device).type != "cpu":
            vae.to("cpu")  # back when samples are drawn

    def sample(self, batch, flips=None) -> torch.Tensor:
        """Latents for a batch (instance rows, then class rows), scaled like the loop's;
        `flips`: which rows are mirrored (random_flip), or None."""
        rows = [("instance", batch["instance_index"])]
        if "class_index" in batch:
            rows.append(("class", batch["class_index"]))
        picked, start = [], 0
        for name, idx in rows:
            mean, std = (t[idx] for t in self.parts[(name, False)])
            if flips is not None:  # mirrored rows from the mirrored photos' encodings
                f = flips[start:start + len(idx), None, None, None].to(mean.device)
                mean = torch.where(f, self.parts[(name, True)][0][idx], mean)
                std = torch.where(f, self.parts[(name, True)][1][idx], std)
            picked.append((mean, std))
            start += len(idx)
        # indexed, not stacked: the cached latents keep their memory layout (channels_last
        # on the toy's VAE), and so does the noise drawn like them (randn_like), run to run
        mean = torch.cat([m for m, _ in picked])
        std = torch.cat([s for _, s in picked])
        # one draw for the whole batch, as DiagonalGaussianDistribution.sample() makes it
        return (mean + std * torch.randn(mean.shape, device=mean.device, dtype=mean.dtype)) \
            * self.vae_scale


class BucketLatents:
    """LatentCache for aspect-ratio buckets: photos have different shapes, so each is encoded
    alone; a class image is encoded cropped to each bucket it is paired with (each dataset
    item pairs one photo with one class image, so at most one encoding per item)."""

    def __init__(self, vae, dataset, device, dtype, flip: bool = False, offload: bool = True):
        self.vae_scale, self.dists = vae.config.scaling_factor, {}
        n = len(dataset.instance)
        wanted = [("instance", j, None) for j in range(n)]
        if dataset.classes:
            wanted += list(dict.fromkeys(
                ("class", dataset.class_index(i), dataset.instance_buckets[i % n])
                for i in range(len(dataset))))
        with torch.no_grad():
            for kind, k, bucket in wanted:
                u8 = dataset.instance[k] if kind == "instance" else dataset.class_pixels(k, bucket)
                for mirrored in (False, True) if flip else (False,):
                    x = _normalise(u8)[None]
                    dist = vae.encode((x.flip(-1) if mirrored else x).to(device, dtype)).latent_dist
                    self.dists[(kind, k, bucket, mirrored)] = (dist.mean.float(), dist.std.float())
        self.buckets = dataset.instance_buckets
        if offload and torch.device(device).type != "cpu":
            vae.to("cpu")

    def sample(self, batch, flips=None) -> torch.Tensor:
        photos = batch["instance_index"].tolist()
        keys = [("instance", j, None) for j in photos]
        if "class_index" in batch:
            keys += [("class", k, self.buckets[j])
                     for k, j in zip(batch["class_index"].tolist(), photos)]
        mirrored = flips.tolist() if flips is not None else [False] * len(keys)
        mean = torch.cat([self.dists[(*key, f)][0] for key, f in zip(keys, mirrored)])
        std = torch.cat([self.dists[(*key, f)][1] for key, f in zip(keys, mirrored)])
        return (mean + std * torch.randn(mean.shape, device=mean.device, dtype=mean.dtype)) \
            * self.vae_scale


class StepInputs:
    """batch -> (latents, text states, SDXL's added conditions, number of instance rows)."""

    def __init__(self, config, comps, dataset, device, dtype):
        self.comps, self.device, self.dtype = comps, device, dtype
        self.resolution = config.resolution
        self.mask = config.text_encoder_use_attention_mask
        self.flip = config.random_flip
        kind = BucketLatents if dataset.buckets else LatentCache
        self.latent_cache = kind(comps.vae, dataset, device, dtype, flip=self.flip) \
            if config.cache_latents else None
        self.last_flips = None  # the rows mirrored in the latest batch (random_flip)
        self.text_cache = {}  # prompt -> text-encoder states, while the encoder is frozen
        if config.precompute_text_embeddings and not config.train_text_encoder:
            every = list(dict.fromkeys(dataset.instance_captions + dataset.class_prompts))
            text_states(comps, every, len(every), device, self.text_cache, False, self.mask)
            offload_text_encoders(comps, device)

    def __call__(self, batch, text_encoder_trains: bool):
        comps, device = self.comps, self.device
        pixels, prompts = batch["pixel_values"], batch["prompts"]
        n = len(prompts)
        if "class_pixel_values" in batch:  # instance rows first, then class rows
            pixels = torch.cat([pixels, batch["class_pixel_values"]])
            prompts = prompts + batch["class_prompts"]
        # random_flip: half the rows mirrored, drawn from torch's generator (saved with every
        # checkpoint, so a resumed run mirrors the same rows)
        flips = torch.rand(pixels.shape[0]) < 0.5 if self.flip else None
        self.last_flips = flips
        with torch.no_grad():
            if self.latent_cache is not None:
                latents = self.latent_cache.sample(batch, flips).to(device)
            else:
                if flips is not None:
                    pixels = torch.where(flips[:, None, None, None], pixels.flip(-1), pixels)
                latents = comps.vae.encode(pixels.to(device, self.dtype)).latent_dist.sample() \
                    .float() * comps.vae.config.scaling_factor
        text = text_states(comps, prompts, n, device, self.text_cache, text_encoder_trains,
                           self.mask)
        size = tuple(pixels.shape[-2:])  # (height, width): the bucket's, or the square
        added = added_cond(comps, prompts, device, self.text_cache, size) \
            if comps.is_sdxl else None
        return latents, text, added, n
