"""Exports: one .safetensors file in the original Stable Diffusion layout, for AUTOMATIC1111,
ComfyUI and `StableDiffusionPipeline.from_single_file`.

diffusers splits a model into folders with its own module names (down_blocks.0.resnets.0...);
the original CompVis/LDM code, which the WebUIs follow, keeps one file with three prefixes:

    model.diffusion_model.*           the UNet      (input_blocks / middle_block / output_blocks)
    first_stage_model.*               the VAE       (encoder.down.N.block.M / decoder.up...)
    cond_stage_model.transformer.*    the CLIP text encoder (SD 1.x; its names are unchanged)

The renaming below is derived from the two architectures (the LDM UNet numbers its blocks in
one sequence: each resnet+attention pair, then the downsampler, is one `input_blocks.N`), and
works for any depth and layers_per_block, the tiny test models included. SD 2.x's OpenCLIP
text encoder and SDXL use other names and are not converted here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from ..core.checks import inputs_of, output_file, output_folder
from ..core.errors import DreamkitError
from ..models.layouts import RESNET_NAMES, split_key, unet_prefixes
from ..models.loading import load_pipeline
from ..models.lora import LORA_WEIGHTS, is_lora_run, kohya_files, lora_file_name
from ..models.portable import make_portable, readable
from ..models.sdxl import is_sdxl

__all__ = ["unet_to_original", "vae_to_original", "text_encoder_to_original",
           "to_original_state_dict", "export_single_file", "export_all",
           "single_file_problem", "is_sd15_architecture"]

def unet_to_original(state: dict, config) -> dict:
    pairs = unet_prefixes(config)
    out = {}
    for key, value in state.items():
        prefix, rest = split_key(key, pairs)
        if ".resnets." in key:  # a resnet's parts have other names too (norm1 -> in_layers.0)
            for hf, orig in RESNET_NAMES:
                if rest.startswith(hf + "."):
                    rest = orig + rest[len(hf):]
                    break
        out["model.diffusion_model." + prefix + rest] = value
    return out


_VAE_RESNET = [("conv_shortcut", "nin_shortcut")]
_VAE_ATTN = [("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
             ("to_out.0.", "proj_out.")]


def vae_to_original(state: dict, config) -> dict:
    n_blocks = len(config["block_out_channels"])
    pairs = [("encoder.conv_norm_out.", "encoder.norm_out."),
             ("decoder.conv_norm_out.", "decoder.norm_out.")]
    for part in ("encoder", "decoder"):
        pairs.append((f"{part}.mid_block.attentions.0.", f"{part}.mid.attn_1."))
        for j in range(2):
            pairs.append((f"{part}.mid_block.resnets.{j}.", f"{part}.mid.block_{j + 1}."))
        for name in ("conv_in.", "conv_out."):
            pairs.append((f"{part}.{name}", f"{part}.{name}"))
    for i in range(n_blocks):
        for j in range(config["layers_per_block"] + 1):
            pairs.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}."))
            # the original decoder numbers its levels from the bottom up
            pairs.append((f"decoder.up_blocks.{i}.resnets.{j}.",
                          f"decoder.up.{n_blocks - 1 - i}.block.{j}."))
        pairs.append((f"encoder.down_blocks.{i}.downsamplers.0.", f"encoder.down.{i}.downsample."))
        pairs.append((f"decoder.up_blocks.{i}.upsamplers.0.",
                      f"decoder.up.{n_blocks - 1 - i}.upsample."))
    for name in ("quant_conv.", "post_quant_conv."):
        pairs.append((name, name))
    out = {}
    for key, value in state.items():
        new = "".join(split_key(key, pairs))
        for hf, orig in _VAE_RESNET:
            new = new.replace(hf, orig)
        if ".attn_1." in new:
            for hf, orig in _VAE_ATTN:
                new = new.replace(".attn_1." + hf, ".attn_1." + orig)
            if value.ndim == 2:  # the original attention uses 1×1 convolutions
                value = value[:, :, None, None]
        out["first_stage_model." + new] = value
    return out


def text_encoder_to_original(state: dict) -> dict:
    """SD 1.x keeps transformers' CLIPTextModel names under cond_stage_model.transformer.
    (newer transformers drop the `text_model.` level, which the original names have)."""
    out = {}
    for key, value in state.items():
        key = key if key.startswith("text_model.") else "text_model." + key
        out["cond_stage_model.transformer." + key] = value
    return out


def to_original_state_dict(pipe) -> dict:
    """The whole pipeline's weights under the original Stable Diffusion names."""
    if type(pipe.text_encoder).__name__ != "CLIPTextModel" or is_sdxl(pipe):
        raise DreamkitError("export single-file: only Stable Diffusion 1.x (CLIPTextModel) "
                            "pipelines convert here; for SDXL or SD 2.x use the diffusers folder")
    state = unet_to_original(pipe.unet.state_dict(), pipe.unet.config)
    state.update(vae_to_original(pipe.vae.state_dict(), pipe.vae.config))
    state.update(text_encoder_to_original(pipe.text_encoder.state_dict()))
    return state


def export_single_file(model, out_file, half: bool = False) -> Path:
    """Write `model` (a run folder, any diffusers folder, or a loaded pipeline) as one
    safetensors file in the original layout; `half` stores fp16 (about 2 GB for SD 1.5)."""
    out_file = output_file("out_file", out_file, inputs_of(model) if isinstance(model, (str, Path))
                           else {}, (".safetensors",))
    pipe = load_pipeline(str(model)) if isinstance(model, (str, Path)) else model
    if getattr(pipe.unet, "peft_config", None):
        pipe.fuse_lora()  # bake a LoRA into the weights: the file is a plain model
        pipe.unload_lora_weights()
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
             for k, v in to_original_state_dict(pipe).items()}
    out_file.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out_file), metadata={"format": "pt", "dreamkit": json.dumps(
        {"layout": "original Stable Diffusion (LDM)", "dtype": "fp16" if half else "fp32"})})
    return out_file


def single_file_problem(pipe) -> str | None:
    """Why this pipeline cannot become one original-layout file here, or None."""
    if is_sdxl(pipe):
        return "SDXL is not converted to one file here"
    if type(pipe.text_encoder).__name__ != "CLIPTextModel" or \
            pipe.unet.config.cross_attention_dim != pipe.text_encoder.config.hidden_size:
        return "only Stable Diffusion 1.x converts to one file here (SD 2.x uses OpenCLIP names)"
    return None


def is_sd15_architecture(folder) -> bool:
    """SD 1.x's own shapes (a diffusers folder's configs): what AUTOMATIC1111 and ComfyUI
    recognise a single file by."""
    try:
        u = json.loads((Path(folder) / "unet" / "config.json").read_text())
        t = json.loads((Path(folder) / "text_encoder" / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (tuple(u.get("block_out_channels", ())) == (320, 640, 1280, 1280)
            and u.get("cross_attention_dim") == 768 and t.get("hidden_size") == 768
            and t.get("num_hidden_layers") == 12)


def export_all(model, out, single_file: bool = False, half: bool = False,
               diffusers: bool = True, base: str | None = None,
               name: str | None = None) -> list[Path]:
    """`dreamkit export`: the diffusers folder (a LoRA baked in), the LoRA files of a LoRA run,
    and optionally the single file. Returns what was written (readable by other users, in
    names older releases read too: portable.py). `name`: the kohya LoRA file's name (and its
    ss_output_name); default: the run's."""
    model = Path(model)
    out = output_folder("out", out, inputs_of(model), model_ok=True)  # as the CLI checks it
    written = []
    pipe = load_pipeline(str(model), base=base)
    problem = single_file_problem(pipe) if single_file else None
    if problem:  # before anything is written
        raise DreamkitError(f"--single_file: {problem}; export the diffusers folder (without "
                            f"--single_file), which diffusers, ComfyUI and InvokeAI load")
    out.mkdir(parents=True, exist_ok=True)
    if is_lora_run(model):
        shutil.copy2(model / LORA_WEIGHTS, out / LORA_WEIGHTS)
        written.append(out / LORA_WEIGHTS)
        for kohya in kohya_files(model):
            written.append(_copy_kohya(kohya, out, name))
        pipe.fuse_lora()
        pipe.unload_lora_weights()
    if diffusers:
        pipe.save_pretrained(out, safe_serialization=True)
        make_portable(out)
        written.append(out / "model_index.json")
    if single_file:
        written.append(export_single_file(pipe, out / "model.safetensors", half=half))
    readable(*written)
    return written


def _copy_kohya(kohya: Path, out: Path, name: str | None) -> Path:
    """The kohya file into `out`, renamed (with its ss_output_name) when `name` is given."""
    if not name:
        shutil.copy2(kohya, out / kohya.name)
        return out / kohya.name
    target = out / lora_file_name(name)
    with safe_open(str(kohya), "pt") as f:
        meta = {**(f.metadata() or {}), "ss_output_name": target.stem}
        save_file({k: f.get_tensor(k) for k in f.keys()}, str(target), metadata=meta)
    return target
