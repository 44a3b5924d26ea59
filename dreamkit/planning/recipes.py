"""The recipes: settings that belong together for a GPU and a model, in one table.

The planner ranks them (`dreamkit plan-memory --recipes`), the notebooks start from the one for
their model (`recipe_for`), and tests train each through the loop. A recipe is a dict of
TrainConfig fields; `TrainConfig(**recipe, ...)` or `config.replace(**recipe)` applies it.
"""

from __future__ import annotations

from ..models.sdxl import is_sdxl

__all__ = ["T4_SETTINGS", "SDXL_SETTINGS", "RECIPES", "recipe_for"]

# Full-UNet DreamBooth with prior preservation on a free T4 (planned peak in
# benchmarks/RESULTS.md): each weight updated inside backward so no full gradient is held,
# 8-bit AdamW states, recomputed activations, VAE and text encoder off the GPU, and the UNet's
# matmuls in fp16 (fp32 master weights; the loss scaled, with a check pass against overflow:
# training/optim.py).
T4_SETTINGS = dict(optimizer_in_backward=True, use_8bit_adam=True, gradient_checkpointing=True,
                   cache_latents=True, precompute_text_embeddings=True, mixed_precision="fp16",
                   step_mode="auto")

# Recipes people use for DreamBooth on a small GPU, compared by `dreamkit plan-memory --recipes`
RECIPES = {
    "T4_SETTINGS (fp16, update inside backward)": T4_SETTINGS,
    "T4_SETTINGS in fp32 (no loss scaling, no check pass)": {**T4_SETTINGS,
                                                            "mixed_precision": "no"},
    "fp16 + 8-bit AdamW + checkpointing (the usual Colab recipe)": dict(
        mixed_precision="fp16", use_8bit_adam=True, gradient_checkpointing=True,
        cache_latents=True, precompute_text_embeddings=True, optimizer_in_backward=False),
    "LoRA rank 4, fp16 + checkpointing": dict(
        use_lora=True, learning_rate=1e-4, mixed_precision="fp16", gradient_checkpointing=True,
        optimizer_in_backward=False),
}

# SDXL's full UNet (2.6 B values) does not train on a T4; its LoRA does (planned ~6.7 GiB)
SDXL_SETTINGS = dict(use_lora=True, mixed_precision="fp16", gradient_checkpointing=True,
                     cache_latents=True, precompute_text_embeddings=True, resolution=1024)


def recipe_for(model: str) -> tuple[str, dict]:
    """(name, settings) of the recipe a notebook starts from for `model` on a T4."""
    if is_sdxl(model):
        return "SDXL_SETTINGS (LoRA at 1024 px)", SDXL_SETTINGS
    return "T4_SETTINGS", T4_SETTINGS
