"""LoRA: train a few small matrices beside the frozen weights instead of the weights themselves.

A LoRA layer adds `B @ A` (rank r, scaled by alpha / r) to a linear layer's output. Only A and
B are trained, so the optimizer state and the gradients shrink from the whole UNet (860 M
numbers for SD 1.5) to a few million, and the result is a file of a few MB instead of 2-4 GB.
DreamBooth with LoRA is the same training step (dreamkit.train) with different weights marked
trainable; the adapters come from peft, the file formats from diffusers:

    pytorch_lora_weights.safetensors   diffusers' format: pipe.load_lora_weights(run_dir)
    <run name>.safetensors             kohya's key names: AUTOMATIC1111, ComfyUI, InvokeAI
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..core.errors import ConfigError
from .layouts import original_module
from .portable import lora_hub_names, readable
from .sdxl import is_sdxl

# diffusers, peft: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["add_lora", "add_lora_as_configured", "lora_state", "is_lora_run",
           "has_trained_model", "save_lora", "to_kohya", "kohya_state", "kohya_metadata", "base_model_version", "fold_alpha", "model_name",
           "lora_file_name", "kohya_files",
           "LORA_WEIGHTS", "UNET_TARGETS", "TEXT_ENCODER_TARGETS"]

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"  # the name load_lora_weights looks for
# Attention projections: where the DreamBooth LoRA scripts put adapters on SD's UNet.
UNET_TARGETS = ("to_k", "to_q", "to_v", "to_out.0")
TEXT_ENCODER_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")


def add_lora(model: torch.nn.Module, rank: int, alpha: float, targets, dora: bool = False,
             dropout: float = 0.0) -> list:
    """Freeze `model`, attach LoRA adapters to the `targets` layers; return the new params.

    The adapters are fp32 even when the frozen weights are fp16/bf16: their updates are small,
    and small updates vanish in half precision. `dora`: DoRA (peft's use_dora), which adds a
    magnitude per output feature beside the low-rank direction update; `dropout`: peft's
    lora_dropout on the adapters' input.
    """
    from peft import LoraConfig

    model.requires_grad_(False)
    try:
        model.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian",
                                     target_modules=list(targets), use_dora=dora,
                                     lora_dropout=dropout))
    except ValueError as e:  # peft: a target the model does not have
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                        if isinstance(m, torch.nn.Linear)})
        raise ConfigError("lora_target_modules", list(targets), f"not all are layers of this "
                          f"model ({str(e).splitlines()[0][:80]}); its linear layers are named "
                          f"{', '.join(names[:12])}") from None
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    return params


def add_lora_as_configured(model: torch.nn.Module, config, targets=None) -> list:
    """add_lora with a TrainConfig's rank, alpha, DoRA and dropout: the one reading of them
    (training, the memory plan and the disk sizes); `targets` default: the UNet's."""
    return add_lora(model, config.lora_rank, config.lora_alpha or config.lora_rank,
                    targets or config.lora_target_modules or UNET_TARGETS, config.use_dora,
                    config.lora_dropout)


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


def lora_file_name(run_name: str) -> str:
    """The kohya file's name: the run's, so AUTOMATIC1111 lists it as <lora:NAME:1> and a
    second run's file sits beside the first instead of replacing it."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", run_name).strip("-.") or "dreambooth"
    reserved = {Path(LORA_WEIGHTS).stem, "model", "diffusion_pytorch_model"}
    return f"{name}-lora.safetensors" if name in reserved else f"{name}.safetensors"


def kohya_files(folder) -> list[Path]:
    """The kohya LoRA files of a folder: the safetensors with kohya's ss_* metadata."""
    found = []
    for f in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(f), "pt") as g:
                if "ss_network_module" in (g.metadata() or {}):
                    found.append(f)
        except Exception:  # noqa: BLE001 - a damaged file is not a kohya file
            continue
    return found


def save_lora(folder, unet, text_encoder=None, name: str = "dreambooth", sdxl: bool = False,
              about: dict | None = None) -> list[Path]:
    """Write the diffusers LoRA file and its kohya twin (`name`.safetensors) into `folder`;
    return both paths. `about`: what the run was (base model, resolution, steps) for kohya's
    ss_* metadata."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    folder = Path(folder)
    (StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline).save_lora_weights(
        folder, unet_lora_layers=lora_state(unet),
        text_encoder_lora_layers=lora_state(text_encoder) if text_encoder is not None else None,
        unet_lora_adapter_metadata=_metadata(unet),
        text_encoder_lora_adapter_metadata=_metadata(text_encoder)
        if text_encoder is not None else None, safe_serialization=True)
    diffusers_file = folder / LORA_WEIGHTS
    alphas = {"unet": _metadata(unet)["lora_alpha"]}
    if text_encoder is not None:
        alphas["text_encoder"] = _metadata(text_encoder)["lora_alpha"]
    kohya = folder / lora_file_name(name)
    to_kohya(diffusers_file, kohya, alphas, unet_config=dict(unet.config),
             about={**(about or {}), "output_name": Path(kohya).stem})
    with safe_open(str(diffusers_file), "pt") as f:  # the Hub's text-encoder names (older
        meta = f.metadata()                           # diffusers need them, newer read them)
        state = lora_hub_names({k: f.get_tensor(k) for k in f.keys()})
    state, meta = fold_alpha(state, meta)
    save_file(state, str(diffusers_file), metadata=meta)
    readable(diffusers_file, kohya)
    return [diffusers_file, kohya]


def fold_alpha(state: dict, metadata: dict | None) -> tuple[dict, dict]:
    """LoRA scales each update by alpha / rank. diffusers keeps alpha in the file's header
    only, which older releases (0.32 and before) ignore: they would apply alpha = rank, the
    wrong strength. So the scale goes into the up (B) weights and the header says alpha =
    rank: every loader, reading the header or not, applies the same update. The base model's
    local path is left out of the header (a Drive path would travel with a shared file)."""
    meta = dict(metadata or {})
    info = json.loads(meta.get("lora_adapter_metadata", "{}") or "{}")
    scale = {}
    for part in ("unet", "text_encoder", "text_encoder_2"):
        rank, alpha = info.get(f"{part}.r"), info.get(f"{part}.lora_alpha")
        if rank and alpha and alpha != rank:
            scale[part] = alpha / rank
            info[f"{part}.lora_alpha"] = rank
        if info.get(f"{part}.base_model_name_or_path"):
            info[f"{part}.base_model_name_or_path"] = model_name(
                info[f"{part}.base_model_name_or_path"])
    out = {}
    for key, value in state.items():
        part = key.split(".", 1)[0]
        up = ".lora_B." in key or ".lora.up." in key or ".lora_linear_layer.up." in key \
            or key.endswith("lora_B.weight")
        out[key] = value * scale[part] if up and part in scale else value
    if info:
        meta["lora_adapter_metadata"] = json.dumps(info, indent=2, sort_keys=True)
    return out, meta


def model_name(name_or_path: str) -> str:
    """What kohya records of a base model: its name, never the local path to it
    ('/content/drive/MyDrive/models/sd15' -> 'sd15'; a hub id keeps its repository name)."""
    text = str(name_or_path).rstrip("/\\")
    return Path(text).name if text else ""


def base_model_version(unet_config: dict) -> str:
    """kohya's ss_base_model_version: sdxl_base_v1-0, sd_v2 (OpenCLIP, 1024-wide context) or
    sd_v1; AUTOMATIC1111 files a LoRA under SDXL, SD2 or SD1 by it."""
    if is_sdxl(unet_config):
        return "sdxl_base_v1-0"
    return "sd_v2" if unet_config.get("cross_attention_dim") == 1024 else "sd_v1"


def to_kohya(diffusers_file, out_file, alphas: dict | None = None, unet_config=None,
             about: dict | None = None) -> Path:
    """Write a diffusers LoRA file as a kohya file: kohya's names (kohya_state) and the ss_*
    metadata its scripts, AUTOMATIC1111 and ComfyUI read."""
    unet_config = dict(unet_config or {})
    size = unet_config.get("sample_size")
    about = {**({"model_size": size * 8} if isinstance(size, int) else {}), **(about or {})}
    out = kohya_state(load_file(str(diffusers_file)), alphas, unet_config)
    rank = next((v.shape[0] for k, v in out.items() if k.endswith("lora_down.weight")), 0)
    out_file = Path(out_file)
    save_file(out, str(out_file), metadata=kohya_metadata(
        base_model_version(unet_config), rank, (alphas or {}).get("unet", rank), about,
        Path(diffusers_file).name))
    return out_file


def kohya_state(state: dict, alphas: dict | None, unet_config: dict) -> dict:
    """A diffusers LoRA state dict in kohya's names.

    UNet: SD 1.x/2.x keep diffusers' block names (lora_unet_down_blocks_1_attentions_0_...),
    which kohya's SD networks use; SDXL's networks use the original block names
    (lora_unet_input_blocks_4_1_...), derived from the UNet's config (layouts.py). Text
    encoders: lora_te_ (SD 1.x/2.x), lora_te1_/lora_te2_ (SDXL), with CLIP's module path
    text_model.encoder... kohya files carry each layer's alpha as a tensor; diffusers' converter
    writes alpha = rank, so the real alpha (`alphas`: {"unet": a, "text_encoder": a}) is put
    back, otherwise the tools would scale the LoRA by the wrong factor.
    """
    from diffusers.utils import (
        convert_state_dict_to_kohya,
        convert_state_dict_to_peft,
        convert_unet_state_dict_to_peft,
    )

    sdxl = base_model_version(unet_config).startswith("sdxl")
    unet = {k: v for k, v in state.items() if k.startswith("unet.")}
    te = {k: v for k, v in state.items() if k.startswith("text_encoder")}
    # the two parts are saved in different diffusers dialects; each has its own converter
    peft = convert_unet_state_dict_to_peft(unet) if unet else {}
    if sdxl:
        peft = {_original_unet_key(k, unet_config): v for k, v in peft.items()}
    if te:
        peft.update(convert_state_dict_to_peft(te))
    out = {}
    for key, value in convert_state_dict_to_kohya(peft).items():
        if key.endswith(".lora_magnitude_vector"):  # DoRA: the converter leaves it half done
            # kohya/LyCORIS name it <module>.dora_scale, one value per output feature [out, 1]
            key = key[:-len(".lora_magnitude_vector")].replace(".", "_") + ".dora_scale"
            value = value.reshape(-1, 1)
        if key.startswith("lora_te1_") and not sdxl:  # SD 1.x/2.x tools: one text encoder
            key = "lora_te_" + key[len("lora_te1_"):]
        for te_prefix in ("lora_te_", "lora_te1_", "lora_te2_"):
            if key.startswith(te_prefix) and not key.startswith(te_prefix + "text_model_"):
                key = te_prefix + "text_model_" + key[len(te_prefix):]
        if key.endswith(".alpha") and alphas:
            part = "unet" if key.startswith("lora_unet_") else "text_encoder"
            value = torch.tensor(float(alphas.get(part, value.item())))
        out[key] = value.contiguous()
    return out


def _original_unet_key(key: str, unet_config: dict) -> str:
    """'unet.down_blocks.1....to_q.lora_A.weight' -> 'unet.input_blocks.4.1....to_q.lora_A...'"""
    head, _, rest = key.partition(".")
    module, sep, tail = rest.partition(".lora_")
    return f"{head}.{original_module(module, unet_config)}{sep}{tail}"


def _architecture(version: str, about: dict) -> str:
    """modelspec's name of the base model: SD 2.x is 512 px, or 768 px with v-prediction."""
    if version == "sd_v2":
        return "stable-diffusion-v2-768-v" if about.get("model_size") == 768 \
            else "stable-diffusion-v2-512"
    return {"sd_v1": "stable-diffusion-v1", "sdxl_base_v1-0": "stable-diffusion-xl-v1-base"}[
        version]


def kohya_metadata(version: str, rank: int, alpha, about: dict, source: str) -> dict:
    """The ss_* keys kohya's scripts write and AUTOMATIC1111, ComfyUI and kohya read."""
    resolution = about.get("resolution")
    meta = {"ss_network_module": "networks.lora", "ss_network_dim": str(rank),
            "ss_network_alpha": str(float(alpha)), "ss_base_model_version": version,
            "ss_v2": str(version == "sd_v2"),
            "ss_sd_model_name": model_name(about.get("base_model", "")),
            "ss_output_name": str(about.get("output_name", "")),
            "ss_resolution": f"({resolution}, {resolution})" if resolution else "",
            "ss_max_train_steps": str(about.get("steps", "")),
            "ss_training_comment": "made with dreamkit (DreamBooth LoRA)",
            "modelspec.architecture": _architecture(version, about) + "/lora",
            "modelspec.resolution": f"{about['model_size']}x{about['model_size']}"
            if about.get("model_size") else "",
            "dreamkit": json.dumps({"from": source})}
    return {k: v for k, v in meta.items() if v != ""}
