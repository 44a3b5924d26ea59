"""diffusers module names and the original (CompVis/LDM) Stable Diffusion names they stand for.

diffusers numbers a UNet's parts per block (down_blocks.1.attentions.0); the original code,
which the WebUIs, ComfyUI and kohya's SDXL networks follow, numbers them in one sequence
(input_blocks.4.1): each resnet + attention pair is one `input_blocks.N`, then the block's
downsampler is the next. The map is derived from the UNet's config, so it holds for SD 1.x,
2.x and SDXL, and for the tiny test models. Used by the single-file export (export.py) and by
kohya's SDXL LoRA names (lora.py).
"""

from __future__ import annotations

from ..core.errors import DreamkitError

__all__ = ["unet_prefixes", "split_key", "original_module", "RESNET_NAMES"]

RESNET_NAMES = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("time_emb_proj", "emb_layers.1"),
           ("norm2", "out_layers.0"), ("conv2", "out_layers.3"), ("conv_shortcut", "skip_connection")]


def unet_prefixes(config) -> list[tuple[str, str]]:
    """(diffusers prefix, original prefix) pairs for every block of a UNet2DConditionModel."""
    n_blocks = len(config["block_out_channels"])
    layers = config["layers_per_block"]
    pairs = [("time_embedding.linear_1.", "time_embed.0."), ("time_embedding.linear_2.", "time_embed.2."),
             ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."), ("conv_out.", "out.2.")]
    for i in range(n_blocks):
        for j in range(layers):  # down: resnet (+ attention) per layer, then the downsampler
            n = (layers + 1) * i + j + 1
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{n}.0."))
            pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{n}.1."))
        if i < n_blocks - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.",
                          f"input_blocks.{(layers + 1) * (i + 1)}.0.op."))
        has_attn = "CrossAttn" in config["up_block_types"][i]
        for j in range(layers + 1):  # up: one more layer than down (the skip connections)
            n = (layers + 1) * i + j
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{n}.0."))
            pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{n}.1."))
        if i < n_blocks - 1:
            pairs.append((f"up_blocks.{i}.upsamplers.0.",
                          f"output_blocks.{(layers + 1) * i + layers}.{2 if has_attn else 1}."))
    pairs.append(("mid_block.attentions.0.", "middle_block.1."))
    for j in range(2):
        pairs.append((f"mid_block.resnets.{j}.", f"middle_block.{2 * j}."))
    return pairs


def split_key(key: str, pairs) -> tuple[str, str]:
    """(original prefix, rest of the key) by the longest matching diffusers prefix."""
    for hf, orig in sorted(pairs, key=lambda p: -len(p[0])):
        if key.startswith(hf):
            return orig, key[len(hf):]
    raise DreamkitError(f"export: no original name for UNet/VAE weight {key!r}; this model's "
                        f"architecture is not a Stable Diffusion 1.x/2.x one")


def original_module(path: str, config) -> str:
    """'down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q' ->
    'input_blocks.4.1.transformer_blocks.0.attn1.to_q' (a module path inside the UNet)."""
    prefix, rest = split_key(path + ".", unet_prefixes(config))
    return (prefix + rest).rstrip(".")
