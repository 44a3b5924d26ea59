"""Where a model comes from: a hub id or a local folder, and whether that folder is a model.

Checked before anything loads, so a typo in a path is one line that says what is wrong (not a
hub lookup of the path, nor a size mismatch after minutes of loading).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from ..core.callbacks import warn
from ..core.errors import ModelError
from .sdxl import is_sdxl

__all__ = ["PARTS", "looks_local", "check_local_folder", "check_model_source", "hub_reachable",
           "offline_if_hub_unreachable"]

PARTS = ("tokenizer", "text_encoder", "vae", "unet", "scheduler")


def looks_local(name_or_path: str) -> bool:
    """A path on this machine rather than a hub id ('user/name')."""
    return Path(name_or_path).expanduser().exists() or name_or_path.startswith((".", "/", "~")) \
        or name_or_path.count("/") > 1 or "\\" in name_or_path


def check_local_folder(name_or_path: str, setting: str = "pretrained_model_name_or_path") -> None:
    """A local model path must be a folder (a typo'd path is not a hub id)."""
    if looks_local(name_or_path) and not Path(name_or_path).expanduser().is_dir():
        raise ModelError(f"{setting}={name_or_path!r} is not a folder; give a hub id like "
                         f"'stable-diffusion-v1-5/stable-diffusion-v1-5' or a folder in the "
                         f"diffusers layout (with model_index.json)")


PROXIES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy")
_PROBED: dict = {}  # the hub probe's answer, asked once per process


def hub_reachable(timeout: float = 3.0) -> bool:
    """Can this machine open a connection to the model hub? Asked once per process, in at most
    `timeout` seconds (a name that does not resolve answers at once). Behind a proxy the answer
    is yes: only the proxy knows."""
    if "answer" not in _PROBED:
        from huggingface_hub import constants

        url = urlsplit(constants.ENDPOINT)
        port = url.port or (443 if url.scheme == "https" else 80)
        seen = []

        def connect():
            try:
                socket.create_connection((url.hostname, port), timeout=timeout).close()
                seen.append(True)
            except OSError:  # the name does not resolve, refused, timed out
                seen.append(False)

        if any(os.environ.get(v) for v in PROXIES):
            seen.append(True)
        else:  # in a thread: a resolver that hangs is not bound by the socket's timeout
            probe = threading.Thread(target=connect, daemon=True)
            probe.start()
            probe.join(timeout + 1)
        _PROBED["answer"] = bool(seen and seen[0])
    return _PROBED["answer"]


def offline_if_hub_unreachable(name: str, report=warn) -> bool:
    """Before `name` is read, if it is a hub id: when the hub cannot be reached and
    HF_HUB_OFFLINE is not set, set it for this process and say so (True). Without it,
    huggingface_hub retries every file five times with backoff: ~23 s a file, four minutes
    before one tokenizer fails, measured on a machine without network. Offline, models already
    downloaded still load at once."""
    from huggingface_hub import constants

    if looks_local(name) or constants.HF_HUB_OFFLINE or hub_reachable():  # (1, true, yes)
        return False
    os.environ["HF_HUB_OFFLINE"] = "1"
    constants.HF_HUB_OFFLINE = True  # read when each file is asked for (transformers too)
    report(f"the model hub cannot be reached from here (no network?): {name!r} can only come "
           f"from models already downloaded; working offline, as with HF_HUB_OFFLINE=1 (a new "
           f"process, or a restarted notebook, asks again)")
    return True


def check_model_source(name_or_path: str, setting: str = "pretrained_model_name_or_path",
                       allow_pickle: bool = False, report=warn) -> None:
    """Fail early, with the fix, when a local path is not a diffusers Stable Diffusion folder;
    for a hub id, work offline at once if the hub cannot be reached (saying so)."""
    path = Path(name_or_path).expanduser()
    if not looks_local(name_or_path):
        offline_if_hub_unreachable(name_or_path, report)
        return  # a hub id: from_pretrained will fetch (or find it in the cache)
    check_local_folder(name_or_path, setting)
    if not (path / "model_index.json").is_file():
        hint = " (a single .safetensors/.ckpt file must be converted first)" \
            if any(path.glob("*.ckpt")) or any(path.glob("*.safetensors")) else ""
        raise ModelError(f"{setting}={name_or_path!r} is not a diffusers model folder: it has no "
                         f"model_index.json{hint}; give the folder that holds model_index.json, "
                         f"unet/, vae/, text_encoder/, tokenizer/ and scheduler/")
    try:
        kind = json.loads((path / "model_index.json").read_text()).get("_class_name", "")
    except (ValueError, OSError, AttributeError):
        raise ModelError(f"{setting}={name_or_path!r}: model_index.json is not valid JSON; "
                         f"restore it from the model's source") from None
    if "Flux" in kind or "StableDiffusion3" in kind or ("XL" in kind and "Img2Img" in kind):
        raise ModelError(f"{setting}={name_or_path!r} is a {kind} model; this trainer handles "
                         f"Stable Diffusion 1.x/2.x and SDXL text-to-image folders")
    xl = is_sdxl(path)
    parts = PARTS + (("tokenizer_2", "text_encoder_2") if xl else ())
    missing = [p for p in parts if not (path / p).is_dir()]
    if missing:
        what = "an SDXL" if xl else "a Stable Diffusion 1.x/2.x"
        raise ModelError(f"{setting}={name_or_path!r} lacks "
                         f"{', '.join(p + '/' for p in missing)}; this needs {what} folder with "
                         f"{', '.join(parts)}")
    if not allow_pickle:
        pickled = [p for p in ("text_encoder", "vae", "unet")
                   if not any((path / p).glob("*.safetensors"))
                   and any(f.suffix in (".bin", ".ckpt", ".pt") for f in (path / p).iterdir())]
        if pickled:
            raise ModelError(f"{setting}={name_or_path!r}: {', '.join(pickled)}/ hold(s) only "
                             f"pickled weights (.bin), which can run code when loaded; convert "
                             f"them to safetensors, or set allow_pickle=True if you trust where "
                             f"the model came from")
