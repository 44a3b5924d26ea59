"""Disk space: what a run will write (said before it starts), what a run folder holds, freeing it.

Free Google Drive has 15 GB. A full SD 1.5 run writes class images (a few MB), checkpoints (the
trained fp32 weights and the optimizer's states: ~5 GB with 8-bit AdamW, ~10 GB with torch's) and
the final model (4.3 GB in fp32, 2.1 GB in fp16). dreamkit keeps one checkpoint while it runs
(`checkpoints_total_limit=1`), saves the model in fp16 after fp16 training (`save_precision`)
and removes the checkpoints once the model is saved (`keep_checkpoints`): a finished
`T4_SETTINGS` run leaves ~2.2 GB. `planned_sizes(config)` works this out from the model's
configs before anything is loaded; `run_sizes` and `free_space` look at a run folder after.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..core.checks import nearest_existing
from ..core.keep import key_of, kept
from ..storage.checkpoint import CHECKPOINT_DIR, remove_checkpoints
from ..storage.sizes import PlannedSizes, sizes_from_counts
from .plancache import model_configs
from .shapes import read_here

# diffusers, transformers: imported where used (heavy), so `import dreamkit` stays quick
__all__ = ["PlannedSizes", "planned_sizes", "parameter_counts", "run_sizes", "run_sizes_text",
           "free_space", "sizes_text"]

# What the counts read besides the model's configs, and the code that counts
COUNT_FIELDS = ("train_text_encoder", "use_lora", "lora_rank", "lora_alpha",
                "lora_target_modules", "use_dora", "lora_dropout")
COUNTING_CODE = ("planning/space.py", "planning/shapes.py", "models/lora.py")


def parameter_counts(config) -> dict:
    """Values of each part of the configured model (and of the trained ones), counted on the
    meta device from its configs: once per model configs and LoRA settings (core/keep.py;
    the notebooks say the sizes in every Run all). Counted from dreamkit's shipped configs
    (a hub id that cannot be read here), they are reused only while that holds, as plans are
    (plancache.py)."""
    model = config.pretrained_model_name_or_path
    what = {"model": model_configs(model), **{f: getattr(config, f) for f in COUNT_FIELDS}}
    counts, _ = kept("sizes", key_of(what, COUNTING_CODE), lambda: _counts(config),
                     accept=lambda value: not value[1] or not read_here(model))
    return dict(counts)


def _counts(config) -> list:
    """[values of each part, whether dreamkit's shipped configs stood in for the model's]"""
    from ..models.lora import add_lora_as_configured
    from .shapes import meta_models
    shapes = meta_models(config.pretrained_model_name_or_path)
    models = shapes.parts
    counts = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    counts["trained"] = counts["unet"] + (counts["text_encoder"]
                                          if config.train_text_encoder else 0)
    if config.use_lora:
        params = add_lora_as_configured(models["unet"], config)
        counts["trained"] = sum(p.numel() for p in params)
    return [counts, bool(shapes.assumed)]


def planned_sizes(config) -> PlannedSizes:
    """What training `config` will write, from the model's configs (nothing is loaded)."""
    return sizes_from_counts(parameter_counts(config), config)


def sizes_text(config) -> str:
    """One paragraph for the notebooks: the planned sizes, and the free space where the run
    goes (Drive on Colab)."""
    text = planned_sizes(config).text()
    where = nearest_existing(config.output_dir)
    free = shutil.disk_usage(where).free
    return f"{text}. Free space at {where}: {free / 1e9:.1f} GB"


def run_sizes(out) -> dict:
    """Bytes of each part of a run folder: checkpoints, class images, samples, generated
    pictures, the model (its weight folders and files) and the rest."""
    out, sizes = Path(out), {}
    named = {CHECKPOINT_DIR: "checkpoints", "class_images": "class images",
             "samples": "samples", "generated": "generated"}
    for entry in sorted(out.iterdir()) if out.is_dir() else []:
        files = [entry] if entry.is_file() else [f for f in entry.rglob("*") if f.is_file()]
        size = sum(f.stat().st_size for f in files)
        model_part = entry.suffix == ".safetensors" or entry.name == "model_index.json" or (
            entry.is_dir() and entry.name not in named)
        key = named.get(entry.name, "model" if model_part else "other")
        sizes[key] = sizes.get(key, 0) + size
    return sizes


def run_sizes_text(out) -> str:
    """What a run folder holds, in a line: `model 2.14 GB, samples 3.1 MB, ... (2.15 GB in all)`."""
    sizes = run_sizes(out)

    def size(n: int) -> str:
        return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"
    parts = sorted(sizes.items(), key=lambda kv: -kv[1])
    return (", ".join(f"{k} {size(v)}" for k, v in parts) + f" ({size(sum(sizes.values()))} in "
            f"all)") if sizes else "nothing (the folder is empty or missing)"


def free_space(out, checkpoints: bool = True, class_images: bool = False,
               samples: bool = False) -> int:
    """Remove the chosen parts of a run folder; the bytes freed. The model is never touched."""
    out, freed = Path(out), 0
    if checkpoints:
        freed += remove_checkpoints(out)
    for wanted, name in ((class_images, "class_images"), (samples, "samples")):
        folder = out / name
        if wanted and folder.is_dir():
            freed += sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder)
    return freed
