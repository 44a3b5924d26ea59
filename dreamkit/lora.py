"""LoRA: train a few small matrices beside the frozen weights instead of the weights themselves.

A LoRA layer adds `B @ A` (rank r, scaled by alpha / r) to a linear layer's output. Only A and
B are trained, so the optimizer state and the gradients shrink from the whole UNet (860 M
numbers for SD 1.5) to a few million, and the result is a file of a few MB instead of 2-4 GB.
DreamBooth with LoRA is the same training step (dreamkit.train) with different weights marked
trainable; the adapters come from peft, the file formats from diffusers:

    pytorch_lora_weights.safetensors   diffusers' format: pipe.load_lora_weights(run_dir)
    <name>_kohya.safetensors           kohya's key names: AUTOMATIC1111, ComfyUI, InvokeAI
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# diffusers, peft: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["add_lora", "lora_state", "is_lora_run", "has_trained_model", "save_lora", "to_kohya",
           "LORA_WEIGHTS", "UNET_TARGETS", "TEXT_ENCODER_TARGETS"]

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"  # the name load_lora_weights looks for
# Attention projections: where the DreamBooth LoRA scripts put adapters on SD's UNet.
UNET_TARGETS = ("to_k", "to_q", "to_v", "to_out.0")
TEXT_ENCODER_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def add_lora(model: torch.nn.Module, rank: int, alpha: float, targets) -> list:
    """Freeze `model`, attach LoRA adapters to the `targets` layers; return the new params.

    The adapters are fp32 even when the frozen weights are fp16/bf16: their updates are small,
    and small updates vanish in half precision.
    """
    from peft import LoraConfig

    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                 target_modules=list(targets)))
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    return params


def lora_state(model: torch.nn.Module) -> dict:
    """The adapter weights only, in diffusers' key names (what save_lora_weights wants)."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    return convert_state_dict_to_diffusers(get_peft_model_state_dict(model))


def _metadata(model) -> dict | None:
    config = getattr(model, "peft_config", {}).get("default")
    return config.to_dict() if config is not None else None


def has_trained_model(folder) -> bool:
    """A finished run folder: a full diffusers model, or LoRA adapters."""
    folder = Path(folder)
    return (folder / "model_index.json").is_file() or (folder / LORA_WEIGHTS).is_file()


def is_lora_run(folder) -> bool:
    folder = Path(folder)
    return (folder / LORA_WEIGHTS).is_file() and not (folder / "model_index.json").is_file()


def save_lora(folder, unet, text_encoder=None, kohya_name: str = "lora_kohya",
              sdxl: bool = False) -> list[Path]:
    """Write the diffusers LoRA file and its kohya twin into `folder`; return both paths."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    folder = Path(folder)
    (StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline).save_lora_weights(
        folder, unet_lora_layers=lora_state(unet),
        text_encoder_lora_layers=lora_state(text_encoder) if text_encoder is not None else None,
        unet_lora_adapter_metadata=_metadata(unet),
        text_encoder_lora_adapter_metadata=_metadata(text_encoder)
        if text_encoder is not None else None, safe_serialization=True)
    alphas = {"unet": _metadata(unet)["lora_alpha"]}
    if text_encoder is not None:
        alphas["text_encoder"] = _metadata(text_encoder)["lora_alpha"]
    kohya = folder / f"{kohya_name}.safetensors"
    to_kohya(folder / LORA_WEIGHTS, kohya, alphas, sdxl=sdxl)
    return [folder / LORA_WEIGHTS, kohya]


def to_kohya(diffusers_file, out_file, alphas: dict | None = None, sdxl: bool = False) -> Path:
    """Convert a diffusers LoRA file (SD 1.x/2.x) to kohya's names (lora_unet_*, lora_te_*).

    kohya files carry each layer's alpha as a tensor; diffusers' converter writes alpha = rank,
    so the real alpha (`alphas`: {"unet": a, "text_encoder": a}) is put back, otherwise the
    tools would scale the LoRA by the wrong factor.
    """
    from diffusers.utils import (convert_state_dict_to_kohya, convert_state_dict_to_peft,
                                 convert_unet_state_dict_to_peft)
    from safetensors.torch import load_file, save_file

    state = load_file(str(diffusers_file))
    unet = {k: v for k, v in state.items() if k.startswith("unet.")}
    te = {k: v for k, v in state.items() if k.startswith("text_encoder.")}
    # the two parts are saved in different diffusers dialects; each has its own converter
    peft = convert_unet_state_dict_to_peft(unet) if unet else {}
    if te:
        peft.update(convert_state_dict_to_peft(te))
    out = {}
    for key, value in convert_state_dict_to_kohya(peft).items():
        # SD 1.x tools name the one text encoder lora_te_ (lora_te1_/te2_ are SDXL's two), with
        # CLIP's module path text_model.encoder... (newer transformers drop "text_model")
        if key.startswith("lora_te1_") and not sdxl:
            key = "lora_te_" + key[len("lora_te1_"):]
            if not key.startswith("lora_te_text_model_"):
                key = "lora_te_text_model_" + key[len("lora_te_"):]
        if key.endswith(".alpha") and alphas:
            part = "unet" if key.startswith("lora_unet_") else "text_encoder"
            value = torch.tensor(float(alphas.get(part, value.item())))
        out[key] = value.contiguous()
    out_file = Path(out_file)
    save_file(out, str(out_file), metadata={"ss_network_module": "networks.lora",
                                            "dreamkit": json.dumps({"from": Path(diffusers_file).name})})
    return out_file
