"""What a step and an epoch are, in one place: progress, schedules and checkpoints count steps.

A step is one optimizer update: `train_batch_size` photos (each with a class image under prior
preservation), times `gradient_accumulation_steps`, on every process. An epoch is one pass over
the dataset, whose length is the photos × `repeats`, or the class images if there are more
(diffusers' definition: each photo is paired with a class image, and class images cycle).
With aspect-ratio buckets each bucket's items make their own batches, so an epoch may have a
few more batches than items / batch size.
`num_train_epochs` is turned into `max_train_steps` once, before anything else reads it.
"""

from __future__ import annotations

import math
from collections import Counter

__all__ = ["epoch_length", "bucket_batch_count", "steps_per_epoch", "resolve_epochs"]


def epoch_length(n_photos: int, n_class: int, repeats: int = 1) -> int:
    """Items in one epoch (DreamBoothDataset's length)."""
    return max(n_photos * repeats, n_class)


def bucket_batch_count(item_buckets: list, batch_size: int) -> int:
    """Batches in one epoch of aspect-ratio buckets: each bucket's items in their own."""
    return sum(math.ceil(n / batch_size) for n in Counter(item_buckets).values())


def steps_per_epoch(length: int, config, processes: int = 1, photo_buckets=None) -> int:
    """Optimizer steps in one epoch of `length` items; `photo_buckets`: each photo's bucket
    when aspect_buckets is on (item i is photo i % n, so its bucket is that photo's)."""
    batch = config.train_batch_size * processes
    if photo_buckets:
        n = len(photo_buckets)
        batches = bucket_batch_count([photo_buckets[i % n] for i in range(length)], batch)
    else:
        batches = math.ceil(length / batch)
    return math.ceil(batches / config.gradient_accumulation_steps)


def resolve_epochs(config, n_photos: int, n_class: int, processes: int = 1,
                   photo_buckets=None):
    """(config with max_train_steps from num_train_epochs, a line saying how), or (config,
    None) when num_train_epochs is 0."""
    epochs = config.num_train_epochs
    if not epochs:
        return config, None
    length = epoch_length(n_photos, n_class, config.repeats)
    per = steps_per_epoch(length, config, processes, photo_buckets)
    steps = epochs * per
    what = f"{n_photos} photo(s) × repeats {config.repeats}" + (
        f", or {n_class} class images" if n_class > n_photos * config.repeats else "")
    return config.replace(max_train_steps=steps), (
        f"num_train_epochs={epochs}: {epochs} × {per} steps = {steps} steps (an epoch: {what}, "
        f"{length} items in batches of {config.train_batch_size}"
        + (f" × {config.gradient_accumulation_steps} accumulated" if
           config.gradient_accumulation_steps > 1 else "")
        + (f" on {processes} processes" if processes > 1 else "")
        + f"); max_train_steps={config.max_train_steps} is not used")
