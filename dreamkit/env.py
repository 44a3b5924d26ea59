"""Where are we running? Colab or not, GPU or CPU, and where lasting files go.

On Colab, `mount_drive()` mounts Google Drive (the only storage that survives a disconnect);
anywhere else it returns a local folder and says so in one line, so the same notebook runs on a
laptop, in CI and on Colab. `upload_photos()` is Colab's upload button there and a folder or an
ipywidgets FileUpload elsewhere.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import platform
import shutil
import sys
import warnings
from pathlib import Path

import torch

from .data import find_images
from .optim import load_bnb

# google, ipywidgets: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["is_colab", "device", "inference_dtype", "precision_dtype", "supports_bf16",
           "recommended_mixed_precision", "mount_drive", "upload_photos", "save_uploads",
           "env_report", "format_env_report", "check", "quiet_known_warnings", "KNOWN_NOISE"]

# Library messages that mean nothing to a dreamkit user (logger -> text they contain), hidden so
# that a notebook's output starts with what matters; every other warning still shows.
KNOWN_NOISE = {
    # diffusers needs no torchvision: the PIL image processor it falls back to is what we use
    "transformers.utils.import_utils": "requires torchvision (not installed)",
    # an optional 4-bit CPU kernel; 8-bit AdamW does not use it
    "bitsandbytes.backends.cpu.ops": "kernels-community",
}


def _not_noise(text: str):
    return lambda record: text not in record.getMessage()


def quiet_known_warnings() -> None:
    """Filter KNOWN_NOISE (called once when dreamkit is imported)."""
    for name, text in KNOWN_NOISE.items():
        logger = logging.getLogger(name)
        if not any(getattr(f, "dreamkit", False) for f in logger.filters):
            keep = _not_noise(text)
            keep.dreamkit = True
            logger.addFilter(keep)
    # peft, saving a text encoder's LoRA: dreamkit never changes the vocabulary
    warnings.filterwarnings("ignore", message="Could not find a config file in .* will assume "
                            "that the vocabulary was not modified")


def is_colab() -> bool:
    if "google.colab" in sys.modules:
        return True
    try:
        return importlib.util.find_spec("google.colab") is not None
    except ModuleNotFoundError:  # no 'google' package at all
        return False


def device() -> str:
    """Where dreamkit computes: the GPU when there is one, else the CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def inference_dtype(where: str | None = None):
    """Weights for generation: fp16 on a GPU (half the memory, the same pictures), fp32 (None:
    the model's own) on the CPU, where half precision is hundreds of times slower."""
    return torch.float16 if (where or device()) == "cuda" else None


def precision_dtype(mixed_precision: str):
    """The dtype of frozen parts and autocast for a mixed_precision setting ('no' -> fp32)."""
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed_precision, torch.float32)


def supports_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def recommended_mixed_precision() -> str:
    """bf16 on Ampere and newer, fp16 on a T4 (no bf16), 'no' on CPU (fp16/bf16 are very slow there)."""
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if supports_bf16() else "fp16"


def mount_drive(mount_point: str = "/content/drive", local_fallback: str = "~/dreamkit-drive") -> Path:
    """Mount Google Drive on Colab and return 'MyDrive'; elsewhere return a local folder."""
    if is_colab():
        from google.colab import drive  # type: ignore
        drive.mount(mount_point)
        root = Path(mount_point) / "MyDrive"
    else:
        root = Path(local_fallback).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        print(f"Not on Colab: using the local folder {root} in place of Google Drive.")
    return root


def save_uploads(files, dest) -> list[Path]:
    """Write uploaded files into `dest`: {name: bytes} (Colab's dialog), or a FileUpload's
    value: ipywidgets 8's list of {"name", "content"}, ipywidgets 7's {name: {"content"}}."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    items = ((name, c["content"] if isinstance(c, dict) else c) for name, c in files.items()) \
        if isinstance(files, dict) else ((f["name"], f["content"]) for f in files)
    written = []
    for name, content in items:
        target = dest / Path(name).name  # never let an uploaded name escape dest
        target.write_bytes(bytes(content))
        written.append(target)
    return written


def upload_photos(dest, source: str | None = None):
    """Bring photos into `dest`.

    On Colab: the browser's upload dialog. With `source` (a folder): copies its images.
    Elsewhere: returns an ipywidgets FileUpload; files picked in it are saved to `dest`.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if source is not None:
        scan = find_images(source, setting="source")
        for p in scan.images:
            shutil.copy2(p, dest / p.name)
        return [dest / p.name for p in scan.images]
    if is_colab():
        from google.colab import files  # type: ignore
        return save_uploads(files.upload(), dest)
    import ipywidgets as w
    up = w.FileUpload(accept="image/*", multiple=True, description="Photos")
    up.observe(lambda change: save_uploads(change["new"], dest), names="value")
    return up


def _version(name: str) -> str:
    try:
        return importlib.import_module(name).__version__
    except Exception as e:  # a broken optional package must not break the report
        return f"unavailable ({type(e).__name__})"


def env_report() -> dict:
    """Facts that decide what will run: versions, the GPU and its memory, Colab or not."""
    rep = {"python": platform.python_version(), "torch": torch.__version__,
           "cuda": torch.version.cuda if torch.cuda.is_available() else None,
           "gpu": None, "gpu_memory_gb": None, "bf16": supports_bf16(), "colab": is_colab(),
           "cpu_threads": torch.get_num_threads(), "hf_hub_offline": os.environ.get("HF_HUB_OFFLINE") == "1"}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        rep["gpu"], rep["gpu_memory_gb"] = props.name, round(props.total_memory / 2**30, 1)
    for pkg in ("diffusers", "transformers", "accelerate", "bitsandbytes", "peft"):
        rep[pkg] = _version(pkg)
    rep["mixed_precision"] = recommended_mixed_precision()
    return rep


def format_env_report(rep: dict | None = None) -> str:
    rep = rep or env_report()
    where = "Colab" if rep["colab"] else "local"
    gpu = f"{rep['gpu']} ({rep['gpu_memory_gb']} GB)" if rep["gpu"] else "none (CPU only)"
    lines = [f"{where}, Python {rep['python']}, torch {rep['torch']}, GPU: {gpu}",
             "  " + ", ".join(f"{k} {rep[k]}" for k in
                              ("diffusers", "transformers", "accelerate", "bitsandbytes", "peft")),
             f"  suggested mixed_precision: {rep['mixed_precision']}"]
    return "\n".join(lines)


def check(report=None) -> dict:
    """Health of what the memory switches rely on, each with the fallback dreamkit will use.

    {"torch": ..., "cuda": ..., "bitsandbytes": ..., "attention": ..., "mixed_precision": ...}
    as one-line verdicts; printed by `dreamkit env` and the notebooks' first cells.
    """
    out = {"torch": f"{torch.__version__} ok"}
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        out["cuda"] = (f"{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}, "
                       f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB free")
    else:
        out["cuda"] = "no GPU: training runs on the CPU (the toy world and tiny models are fine)"
    notes = []
    bnb = load_bnb(report=notes.append)
    out["bitsandbytes"] = (f"{bnb.__version__}: 8-bit AdamW works" if bnb is not None
                           else notes[0] if notes else "unavailable")
    try:
        q = torch.randn(1, 2, 16, 8)
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
        out["attention"] = "PyTorch SDPA (fused kernels where the device has them)"
    except Exception as e:  # very old torch: diffusers falls back to its own attention
        out["attention"] = f"SDPA unavailable ({type(e).__name__}): diffusers' plain attention"
    out["mixed_precision"] = (f"{recommended_mixed_precision()} suggested"
                              + ("" if supports_bf16() or not torch.cuda.is_available()
                                 else " (no bf16 on this GPU)"))
    if report:
        for k, v in out.items():
            report(f"{k:16}{v}")
    return out
