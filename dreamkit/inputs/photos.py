"""Photos in, training tensors out.

`find_images` lists the photos of a folder (recursively, any case of .jpg .jpeg .png .webp) and
says which files it skipped, naming photos in formats it does not read (an iPhone's HEIC).
`load_image` applies the EXIF orientation a phone wrote, flattens transparency onto white,
converts to RGB, resizes the short side to the training resolution and centre-crops.
`DreamBoothDataset` pairs each instance photo with its caption and, with prior
preservation, a class image with the class prompt (DreamBooth §3.3).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..core.errors import ImageError
from ..core.steps import epoch_length
from .buckets import fit_to_bucket, nearest_bucket

__all__ = ["IMAGE_EXTENSIONS", "UNREAD_PHOTO_FORMATS", "ImageScan", "find_images", "open_image",
           "load_image", "to_tensor", "DreamBoothDataset", "fit_image", "unread_photos",
           "unread_note"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
# Photos in formats left out, named so that a folder of iPhone HEICs or camera raws is not
# "no images" without a word (every tool that trains on the folder reads the four above).
UNREAD_PHOTO_FORMATS = {".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".gif": "GIF",
                        ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".dng": "raw",
                        ".cr2": "raw", ".cr3": "raw", ".nef": "raw", ".arw": "raw",
                        ".raf": "raw", ".orf": "raw", ".rw2": "raw"}
# Photos above this many pixels are refused rather than decoded (decompression-bomb guard).
MAX_PIXELS = 12_000 * 12_000


@dataclass
class ImageScan:
    """What `find_images` found: the photos, and the files it passed over."""
    images: list
    skipped: list

    def summary(self) -> str:
        s = f"{len(self.images)} image(s)"
        unread = unread_photos(self.skipped)
        if unread:
            s += f"; {unread_note(unread)}"
        others = [p for p in self.skipped if p not in unread]
        if others:
            s += f"; skipped {len(others)} non-image file(s): {_names(others)}"
        return s


def _names(paths, shown: int = 5) -> str:
    more = f" and {len(paths) - shown} more" if len(paths) > shown else ""
    return ", ".join(p.name for p in paths[:shown]) + more


def unread_photos(paths) -> list:
    """Those of `paths` that are photos in a format dreamkit does not read (HEIC, raw, ...)."""
    return [p for p in paths if p.suffix.lower() in UNREAD_PHOTO_FORMATS]


def unread_note(paths) -> str:
    """What to say of such photos: 'left out 2 HEIC photo(s), a format dreamkit does not read
    (a.heic, b.heic): convert them to JPEG or PNG (an iPhone ...)'."""
    kinds = sorted({UNREAD_PHOTO_FORMATS[p.suffix.lower()] for p in paths})
    iphone = " (an iPhone saves JPEGs with Settings > Camera > Formats > Most Compatible)" \
        if {"HEIC", "HEIF"} & set(kinds) else ""
    which = "a format" if len(kinds) == 1 else "formats"
    return (f"left out {len(paths)} {'/'.join(kinds)} photo(s), {which} dreamkit does not read "
            f"({_names(paths)}): convert them to JPEG or PNG{iphone}")


def find_images(folder, *, setting: str = "instance_dir", required: bool = True) -> ImageScan:
    """All photos under `folder` (sorted, recursive), and the non-image files skipped.

    `setting` names the config field in error messages. With `required`, a missing or empty
    folder is an error; without, it gives an empty scan (class images not made yet).
    """
    folder = Path(str(folder)).expanduser() if str(folder) else None
    if folder is None or not folder.exists():
        if not required:
            return ImageScan([], [])
        raise ImageError(f"{setting}={str(folder or '')!r} does not exist; point it at a folder "
                         f"with 3-20 photos of your subject")
    if not folder.is_dir():
        raise ImageError(f"{setting}={str(folder)!r} is a file, not a folder; put the photos in "
                         f"a folder and give that")
    images, skipped = [], []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue  # hidden files: .DS_Store, .ipynb_checkpoints, half-written .tmp files
        (images if p.suffix.lower() in IMAGE_EXTENSIONS else skipped).append(p)
    # A .txt beside a photo is its caption (prompts.photo_captions), not a stray file.
    stems = {p.with_suffix("") for p in images}
    skipped = [p for p in skipped if not (p.suffix.lower() == ".txt" and p.with_suffix("") in stems)]
    if required and not images:
        unread = unread_photos(skipped)
        raise ImageError(f"{setting}={str(folder)!r} holds no images (.jpg/.jpeg/.png/.webp); " + (
            unread_note(unread) if unread else "put 3-20 photos of your subject there"))
    return ImageScan(images, skipped)


def open_image(path) -> Image.Image:
    """Decode a photo to upright RGB, or raise ImageError naming the file and the problem."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ImageError(f"{path}: {img.width}×{img.height} pixels is too large to "
                                     f"be a photo; resize it below 12000×12000")
                img.load()  # decode now, so a truncated file fails here with its name
                img = ImageOps.exif_transpose(img)  # phones store rotation as an EXIF tag
                return _to_rgb(img, path)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{path}: too many pixels to decode safely; resize it") from None
    except FileNotFoundError:
        raise ImageError(f"{path}: file not found") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: cannot be read as an image ({e}); re-export it as JPEG or "
                         f"PNG, or remove it") from None


def _to_rgb(img: Image.Image, path="a photo") -> Image.Image:
    if img.mode == "F":  # 32-bit float (scientific or HDR TIFFs, whatever their name says)
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ImageError(f"{path}: holds NaN or infinite "
                             f"pixels (a float image); export it as an 8-bit JPEG or PNG")
        top = 1.0 if arr.max() <= 1.0 else arr.max()  # 0-1 floats, or any other range
        return Image.fromarray((np.clip(arr, 0, None) * (255.0 / top)).astype(np.uint8),
                               "L").convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping everything to white.
        arr = np.asarray(img, dtype=np.float64)
        arr = arr * (255.0 / max(arr.max(), 1.0))
        img = Image.fromarray(arr.astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)  # transparent parts become white, not black
    return img.convert("RGB")


def load_image(path, resolution: int, center_crop: bool = True) -> Image.Image:
    """An upright RGB photo at `resolution`×`resolution`."""
    return fit_image(open_image(path), resolution, center_crop)


def fit_image(img: Image.Image, resolution: int, center_crop: bool = True) -> Image.Image:
    if center_crop:
        scale = resolution / min(img.size)
        size = (max(resolution, round(img.width * scale)), max(resolution, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.BICUBIC)
        left, top = (img.width - resolution) // 2, (img.height - resolution) // 2
        return img.crop((left, top, left + resolution, top + resolution))
    return img.resize((resolution, resolution), Image.Resampling.BICUBIC)


def _uint8(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1)


def _normalise(u8: torch.Tensor) -> torch.Tensor:
    return u8.float() / 127.5 - 1.0  # [0, 255] -> [-1, 1], the range the VAE expects


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor (3, H, W) in [-1, 1]."""
    return _normalise(_uint8(img))


class DreamBoothDataset(torch.utils.data.Dataset):
    """Instance photos with their prompt, plus class images with the class prompt.

    All photos are decoded once at construction, so a broken file is reported before training
    starts, not an hour in. They are kept as uint8 (0.8 MB per 512 px image).
    Item i pairs instance photo i % n_instance with class image i % n_class (of that photo's
    own concept when there are several subjects), so every instance photo is seen `repeats`
    times per epoch and class images cycle (core/steps.py: what an epoch is).
    """

    def __init__(self, instance_images, instance_prompt, resolution: int,
                 class_images=None, class_prompt=None, center_crop: bool = True,
                 captions: list | None = None, class_pools: list | None = None,
                 repeats: int = 1, buckets: list | None = None):
        """`instance_prompt` and `class_prompt` are one prompt, or one per image (several
        subjects). `class_pools[j]` lists the class images photo j may be paired with (its
        own concept's); default: all of them. `buckets`: (width, height) sizes (buckets.py):
        each photo at its nearest one, class images cropped to their photo's; None: squares."""
        if not instance_images:
            raise ImageError("no instance images given; put 3-20 photos of your subject in "
                             "instance_dir")
        n, m = len(instance_images), len(class_images or [])
        self.resolution, self.repeats = resolution, repeats
        self.default_prompts = list(instance_prompt) if isinstance(instance_prompt, list) \
            else [instance_prompt] * n
        self.instance_captions = captions or list(self.default_prompts)
        self.class_prompts = list(class_prompt) if isinstance(class_prompt, list) \
            else [class_prompt] * m
        self.class_pools = class_pools or [range(m)] * n
        self.small = []  # (path, size) of photos far below the training resolution
        self.buckets, self.instance_buckets = buckets, []
        self.instance = [self._load(p, center_crop, buckets) for p in instance_images]
        self.classes = [self._load(p, center_crop) for p in (class_images or [])]

    def _load(self, path, center_crop, buckets=None):
        img = open_image(path)
        if min(img.size) < self.resolution // 2:  # upscaled more than 2x: blurry training data
            self.small.append((Path(path), img.size))
        if buckets:
            bucket = nearest_bucket(img.size, buckets)
            self.instance_buckets.append(bucket)
            return _uint8(fit_to_bucket(img, bucket))
        return _uint8(fit_image(img, self.resolution, center_crop))

    def class_index(self, i: int) -> int:
        """The class image item i is paired with (of its photo's own concept)."""
        pool = self.class_pools[i % len(self.instance)]
        return pool[i % len(pool)]

    def item_buckets(self) -> list:
        """Each item's bucket (its photo's): what BucketBatches groups by."""
        n = len(self.instance)
        return [self.instance_buckets[i % n] for i in range(len(self))]

    def class_pixels(self, k: int, bucket=None) -> torch.Tensor:
        """Class image k as uint8, cropped to `bucket` (its photo's) when buckets are on."""
        u8 = self.classes[k]
        if bucket is None or tuple(u8.shape[-1:-3:-1]) == tuple(bucket):
            return u8
        return _uint8(fit_to_bucket(Image.fromarray(u8.permute(1, 2, 0).numpy()), bucket))

    def __len__(self):
        return epoch_length(len(self.instance), len(self.classes), self.repeats)

    def __getitem__(self, i):
        n = len(self.instance)
        item = {"instance_pixel_values": _normalise(self.instance[i % n]),
                "instance_prompt": self.instance_captions[i % n], "instance_index": i % n}
        if self.classes:
            k = self.class_index(i)
            bucket = self.instance_buckets[i % n] if self.buckets else None
            item["class_pixel_values"] = _normalise(self.class_pixels(k, bucket))
            item["class_prompt"] = self.class_prompts[k]
            item["class_index"] = k
        return item
