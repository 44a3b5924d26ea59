"""Aspect-ratio buckets: photos keep their shape instead of being cropped to a square.

A portrait photo cropped to a square loses its head or its feet; kohya's sd-scripts and
OneTrainer train instead at several sizes of about the same pixel count ("buckets": 512×512,
448×576, 576×448, 384×640, ... for 512 px), each photo at the bucket nearest its aspect ratio,
resized to cover it and cropped only by what is left over. A batch holds photos of one bucket (a
batch is one tensor), drawn in an order that depends only on (seed, epoch), so a resumed run
finds its place. Class images (square) are cropped to the bucket of the photo they are paired
with. `aspect_buckets=True` turns it on; the photo doctor then says which bucket each photo
lands in and what it loses, instead of warning about the centre crop.
"""

from __future__ import annotations

import math
import torch
from PIL import Image, ImageOps

from ..core.steps import bucket_batch_count

__all__ = ["bucket_sizes", "bucket_step", "nearest_bucket", "fit_to_bucket", "cropped_share",
           "upright_size", "BucketBatches", "bucket_batch_count", "MAX_ASPECT"]

MAX_ASPECT = 2.0  # 1:2 to 2:1, as kohya's default buckets


def bucket_step(resolution: int) -> int:
    """Sides are multiples of this: 64 px at Stable Diffusion's sizes (8 latent cells, what
    the UNet's three downsamplings need), an eighth of the side for the small test models."""
    return 64 if resolution >= 512 else max(8, resolution // 8)


def bucket_sizes(resolution: int) -> list[tuple[int, int]]:
    """(width, height) pairs: multiples of bucket_step, at most resolution² pixels, aspect
    ratios between 1:2 and 2:1, the square first."""
    step, area = bucket_step(resolution), resolution * resolution
    sizes = {(resolution, resolution)}
    w = step
    while w <= resolution * MAX_ASPECT:
        h = (area // w) // step * step
        if h >= step and 1 / MAX_ASPECT <= w / h <= MAX_ASPECT:
            sizes.add((w, h))
        w += step
    return sorted(sizes, key=lambda s: (abs(math.log(s[0] / s[1])), s[0]))


def nearest_bucket(size: tuple[int, int], buckets) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest the photo's (width, height)."""
    ratio = math.log(size[0] / size[1])
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - ratio), -b[0] * b[1]))


def cropped_share(size: tuple[int, int], bucket: tuple[int, int]) -> float:
    """The share of the photo cut off when it is fitted to `bucket` (0 = nothing)."""
    scale = max(bucket[0] / size[0], bucket[1] / size[1])
    return 1 - (bucket[0] * bucket[1]) / (size[0] * scale * size[1] * scale)


def fit_to_bucket(img: Image.Image, bucket: tuple[int, int]) -> Image.Image:
    """Resize to cover the bucket, then crop the centre to it (what is left over only)."""
    return ImageOps.fit(img, bucket, method=Image.BICUBIC, centering=(0.5, 0.5))


def upright_size(path) -> tuple[int, int]:
    """A photo's (width, height) as it will be trained (after its EXIF rotation), read from
    its header without decoding the pixels."""
    with Image.open(path) as img:
        w, h = img.size
        if img.getexif().get(0x0112) in (5, 6, 7, 8):  # rotated a quarter turn
            w, h = h, w
    return w, h


class BucketBatches(torch.utils.data.Sampler):
    """Batches of dataset indices, each from one bucket, in an order fixed by (seed, epoch)."""

    def __init__(self, item_buckets: list, batch_size: int, seed: int):
        self.item_buckets, self.batch_size, self.seed, self.epoch = \
            list(item_buckets), batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.item_buckets), generator=g).tolist()
        groups: dict = {}
        for i in order:  # each bucket's items, in the shuffled order
            groups.setdefault(self.item_buckets[i], []).append(i)
        batches = [items[k:k + self.batch_size] for items in groups.values()
                   for k in range(0, len(items), self.batch_size)]
        for j in torch.randperm(len(batches), generator=g).tolist():
            yield batches[j]

    def __len__(self):
        return bucket_batch_count(self.item_buckets, self.batch_size)
