"""Model files that other tools and older releases read as well as the current ones.

transformers 5 saves a CLIPTextModel's weights without the `text_model.` level that the Hub's
Stable Diffusion text encoders carry, and older stacks (transformers 4.x with diffusers 0.3x,
common in Colab images and WebUIs) then start the text encoder from random weights with only a
warning. It also writes only tokenizer.json, which their CLIPTokenizer cannot read, and
safetensors creates files readable by their owner alone (0600), which hides them from a WebUI
running as another user. Current releases read the Hub's names and the vocab.json +
merges.txt pair as well, so dreamkit writes every model folder that way
(tests/test_export.py checks the names against the Hub layout).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

__all__ = ["make_portable", "halve_weights", "hub_text_encoder_names", "slow_tokenizer_files", "readable",
           "lora_hub_names"]

TEXT_ENCODERS = ("text_encoder", "text_encoder_2")
TOKENIZERS = ("tokenizer", "tokenizer_2")


def _hub_key(key: str) -> str:
    return key if key.startswith(("text_model.", "text_projection.")) else "text_model." + key


def hub_text_encoder_names(folder) -> list[Path]:
    """Rewrite the text encoders' weight files with the Hub's key names (text_model.*)."""
    changed = []
    for part in TEXT_ENCODERS:
        for file in sorted((Path(folder) / part).glob("*.safetensors")):
            with safe_open(str(file), "pt") as f:
                keys, metadata = list(f.keys()), f.metadata() or {"format": "pt"}
                if all(_hub_key(k) == k for k in keys):
                    continue
                tensors = {_hub_key(k): f.get_tensor(k) for k in keys}
            save_file(tensors, str(file), metadata=metadata)
            index = file.parent / "model.safetensors.index.json"  # sharded: the map too
            if index.is_file():
                data = json.loads(index.read_text())
                data["weight_map"] = {_hub_key(k): v for k, v in data["weight_map"].items()}
                index.write_text(json.dumps(data, indent=2))
            changed.append(file)
    return changed


def slow_tokenizer_files(folder) -> list[Path]:
    """vocab.json + merges.txt beside each tokenizer.json (CLIP's byte-level BPE)."""
    written = []
    for part in TOKENIZERS:
        fast = Path(folder) / part / "tokenizer.json"
        if not fast.is_file() or (fast.parent / "vocab.json").is_file():
            continue
        model = json.loads(fast.read_text(encoding="utf-8"))["model"]
        merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
        (fast.parent / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False),
                                                encoding="utf-8")
        (fast.parent / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n",
                                                encoding="utf-8")
        written += [fast.parent / "vocab.json", fast.parent / "merges.txt"]
    return written


def readable(*paths) -> None:
    """Files (and every file under folders) readable by others, as the user's umask allows."""
    mask = os.umask(0)
    os.umask(mask)
    for path in map(Path, paths):
        for f in ([path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]):
            os.chmod(f, 0o666 & ~mask)


def make_portable(folder) -> None:
    """A saved diffusers model folder, made readable by older releases and other users."""
    hub_text_encoder_names(folder)
    slow_tokenizer_files(folder)
    readable(folder)


def lora_hub_names(state: dict) -> dict:
    """A diffusers LoRA state dict with the text encoder's keys under the Hub's names
    (text_encoder.text_model.*), which older diffusers need and current diffusers reads."""
    out = {}
    for key, value in state.items():
        for part in ("text_encoder_2.", "text_encoder."):
            if key.startswith(part):
                key = part + _hub_key(key[len(part):])
                break
        out[key] = value
    return out


def halve_weights(folder) -> None:
    """Rewrite every safetensors file under `folder` with its fp32 tensors in fp16 (half the
    size on disk; diffusers loads them back as fp32 unless asked for fp16)."""
    for file in sorted(Path(folder).rglob("*.safetensors")):
        with safe_open(str(file), "pt") as f:
            metadata = f.metadata() or {"format": "pt"}
        state = load_file(str(file))
        if any(v.dtype == torch.float32 for v in state.values()):
            save_file({k: v.half() if v.dtype == torch.float32 else v for k, v in state.items()},
                      str(file), metadata=metadata)
