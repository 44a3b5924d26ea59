"""Compose, Resize, CenterCrop, RandomCrop, ToTensor, Normalize as torchvision defines them
(the subset diffusers' train_dreambooth.py calls), for benchmarks/peer.py only."""

import enum
import random

import numpy as np
import torch
from PIL import Image


class InterpolationMode(enum.Enum):
    BILINEAR = Image.BILINEAR
    BICUBIC = Image.BICUBIC


class Compose:
    def __init__(self, steps):
        self.steps = steps

    def __call__(self, x):
        for step in self.steps:
            x = step(x)
        return x


class Resize:
    """The shorter side to `size`, keeping the aspect ratio (torchvision's int form)."""

    def __init__(self, size, interpolation=InterpolationMode.BILINEAR):
        self.size, self.mode = size, interpolation

    def __call__(self, img):
        w, h = img.size
        s = self.size
        size = (s, max(1, int(s * h / w))) if w <= h else (max(1, int(s * w / h)), s)
        return img.resize(size, self.mode.value)


class CenterCrop:
    def __init__(self, size):
        self.size = size

    def __call__(self, img):
        w, h = img.size
        left, top = int(round((w - self.size) / 2)), int(round((h - self.size) / 2))
        return img.crop((left, top, left + self.size, top + self.size))


class RandomCrop(CenterCrop):
    def __call__(self, img):
        w, h = img.size
        left, top = random.randint(0, w - self.size), random.randint(0, h - self.size)
        return img.crop((left, top, left + self.size, top + self.size))


class ToTensor:
    def __call__(self, img):
        return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = mean[0], std[0]

    def __call__(self, x):
        return (x - self.mean) / self.std
