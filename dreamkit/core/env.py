"""Where are we running? Colab or not, GPU or CPU, which precision, and whether 8-bit AdamW
works here (`dreamkit env` prints it). Drive and uploads are the notebook face's (ui/colab.py).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import sys

import torch

from .callbacks import warn

# bitsandbytes: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["is_colab", "device", "inference_dtype", "supports_bf16",
           "recommended_mixed_precision", "load_bnb", "env_report", "format_env_report",
           "check"]


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


def supports_bf16() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def recommended_mixed_precision() -> str:
    """bf16 on Ampere and newer, fp16 on a T4 (no bf16), 'no' on CPU (fp16/bf16 are very slow there)."""
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if supports_bf16() else "fp16"


def load_bnb(report=warn):
    """bitsandbytes if it imports and runs a tiny 8-bit step here; else None, said in one line."""
    try:
        import bitsandbytes as bnb
        p = torch.nn.Parameter(torch.ones(64, 64, device="cuda" if torch.cuda.is_available()
                                          else "cpu"))
        opt = bnb.optim.AdamW8bit([p], lr=1e-3)
        p.grad = torch.ones_like(p)
        opt.step()  # a broken CUDA build fails here, not at import
        return bnb
    except Exception as e:  # any import or runtime failure means: use torch's AdamW
        detail = str(e).splitlines()[0][:120] if str(e) else "no detail"
        report(f"8-bit AdamW unavailable ({type(e).__name__}: {detail}); using torch AdamW "
               f"(optimizer state 4x larger)")
        return None


_LIBRARIES = ("diffusers", "transformers", "accelerate", "bitsandbytes", "peft")


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
    for pkg in _LIBRARIES:
        rep[pkg] = _version(pkg)
    # The widgets' version decides how the notebooks' forms behave (Colab ships 7.x)
    rep["ipywidgets"] = _version("ipywidgets") if importlib.util.find_spec("ipywidgets") else None
    rep["widgets_note"] = _widgets_note(rep["ipywidgets"], rep["colab"])
    rep["mixed_precision"] = recommended_mixed_precision()
    return rep


def format_env_report(rep: dict | None = None) -> str:
    rep = rep or env_report()
    where = "Colab" if rep["colab"] else "local"
    gpu = f"{rep['gpu']} ({rep['gpu_memory_gb']} GB)" if rep["gpu"] else "none (CPU only)"
    lines = [f"{where}, Python {rep['python']}, torch {rep['torch']}, GPU: {gpu}",
             "  " + ", ".join(f"{k} {rep[k]}" for k in (*_LIBRARIES, "ipywidgets")
                              if rep.get(k)),
             f"  suggested mixed_precision: {rep['mixed_precision']}"]
    if rep.get("widgets_note"):
        lines.append(f"  note: {rep['widgets_note']}")
    return "\n".join(lines)


def _widgets_note(widgets: str | None, colab: bool) -> str | None:
    """ipywidgets 7 beside JupyterLab 4 or Notebook 7 in this environment: their widget
    front end (jupyterlab_widgets 3) registers only ipywidgets 8's modules, so the forms,
    progress bars and caption editor show "Module @jupyter-widgets/controls, version ^1.5.0
    is not registered" (seen in JupyterLab 4.6 with ipywidgets 7.7.5). Colab draws 7.x itself."""
    if colab or not widgets or not widgets[:1].isdigit() or int(widgets.split(".")[0]) >= 8:
        return None
    for app, first_new in (("jupyterlab", 4), ("notebook", 7)):
        try:
            version = importlib.metadata.version(app)
        except importlib.metadata.PackageNotFoundError:
            continue
        if version[:1].isdigit() and int(version.split(".")[0]) >= first_new:
            return (f"ipywidgets {widgets} beside {app} {version}, whose widget front end draws "
                    f"only ipywidgets 8's widgets: there the forms and progress bars show an "
                    f"error instead; pip install -U \"ipywidgets>=8\" (Colab draws 7.x itself)")
    return None


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
