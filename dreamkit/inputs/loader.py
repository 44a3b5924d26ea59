"""From a run's settings to its batches: the dataset of every subject's photos and class
images, what is worth telling about it, and the order of its batches (a square batch shuffled
by (seed, epoch), or one aspect-ratio bucket per batch: buckets.py).
"""

from __future__ import annotations

import torch

from ..core.concepts import class_jobs
from ..core.prompts import photo_captions
from .buckets import BucketBatches, bucket_sizes
from .photos import DreamBoothDataset

__all__ = ["collate", "EpochShuffle", "dataset_notes", "build_dataset", "make_loader"]


def collate(examples: list[dict]) -> dict:
    """Stack a list of dataset items into one batch (prompts stay lists of strings)."""
    batch = {"pixel_values": torch.stack([e["instance_pixel_values"] for e in examples]),
             "prompts": [e["instance_prompt"] for e in examples],
             "instance_index": torch.tensor([e["instance_index"] for e in examples])}
    if "class_pixel_values" in examples[0]:
        batch["class_pixel_values"] = torch.stack([e["class_pixel_values"] for e in examples])
        batch["class_prompts"] = [e["class_prompt"] for e in examples]
        batch["class_index"] = torch.tensor([e["class_index"] for e in examples])
    return batch


class EpochShuffle(torch.utils.data.Sampler):
    """A shuffled order that depends only on (seed, epoch).

    A resumed run can then find its place again: epoch e, batch b is the same batch as in the
    run that was interrupted. (A sampler driven by one running generator would need that
    generator's state at the start of the epoch as well.)
    """

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self):
        return self.n


def dataset_notes(dataset: DreamBoothDataset, resolution: int) -> list[str]:
    """Lines worth telling the user before training: small photos, own captions."""
    notes = []
    if dataset.small:
        names = ", ".join(f"{p.name} ({w}×{h})" for p, (w, h) in dataset.small[:3])
        notes.append(f"warning: {len(dataset.small)} photo(s) are less than half of resolution="
                     f"{resolution} and will be upscaled (blurry results): {names}; use larger "
                     f"photos or a lower resolution")
    own = sum(c != d for c, d in zip(dataset.instance_captions, dataset.default_prompts))
    if own:
        notes.append(f"captions: {own} of {len(dataset.instance_captions)} photos have their "
                     f"own (.txt)")
    return notes


def build_dataset(config, concepts, scans, class_sets: dict) -> DreamBoothDataset:
    """Every subject's photos (`scans`, one ImageScan per concept) with their captions; with
    prior preservation each photo is paired with class images of its own class (DreamBooth
    §3.3, per concept). `class_sets`: {class_dir: image paths} (prior.prepare_class_images)."""
    prior = config.prior_preservation
    class_images, class_prompts, folders = [], [], {}
    for d, prompt, _ in class_jobs(concepts, prior):  # shared class folders are loaded once
        folders[d] = list(range(len(class_images), len(class_images) + len(class_sets[d])))
        class_images += class_sets[d]
        # each class image with the prompt it was drawn from (several: its .txt beside it)
        class_prompts += photo_captions(class_sets[d], prompt[0], "", "")
    instance, defaults, captions, pools = [], [], [], []
    for c, scan in zip(concepts, scans):
        n = len(scan.images)
        instance += scan.images
        defaults += [c.instance_prompt] * n
        captions += photo_captions(scan.images, c.instance_prompt, c.identifier, c.class_noun) \
            if config.use_captions else [c.instance_prompt] * n
        pools += [folders.get(c.class_dir, [])[:c.num_class_images]] * n
    return DreamBoothDataset(instance, defaults, config.resolution, class_images, class_prompts,
                             config.center_crop, captions=captions,
                             class_pools=pools if prior else None, repeats=config.repeats,
                             buckets=bucket_sizes(config.resolution)
                             if config.aspect_buckets else None)


def make_loader(dataset: DreamBoothDataset, config) -> torch.utils.data.DataLoader:
    """Batches in an order that depends only on (seed, epoch), so a resumed run finds its place.
    The loader gets its own generator: starting an epoch would otherwise draw from the global
    RNG, which a resumed run (restarting mid-epoch) would draw from at a different moment."""
    if dataset.buckets:  # one bucket per batch (buckets.py): one tensor shape per batch
        return torch.utils.data.DataLoader(
            dataset, batch_sampler=BucketBatches(dataset.item_buckets(),
                                                 config.train_batch_size, config.seed),
            collate_fn=collate, generator=torch.Generator().manual_seed(config.seed))
    return torch.utils.data.DataLoader(dataset, batch_size=config.train_batch_size,
                                       sampler=EpochShuffle(len(dataset), config.seed),
                                       collate_fn=collate,
                                       generator=torch.Generator().manual_seed(config.seed))
