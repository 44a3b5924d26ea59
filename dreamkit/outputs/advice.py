"""How to load what `dreamkit export` wrote, in each tool: lines made from the files actually
written (a diffusers folder, a single file, LoRA files, the LoRA fused in or not), each diffusers
line a statement that runs as printed (tests/test_export.py executes every one offline).

    diffusers: pipe = DiffusionPipeline.from_pretrained('out')              a folder
    one file: pipe = StableDiffusionPipeline.from_single_file('out/model.safetensors',
              config='<a diffusers folder of the same architecture>')
    LoRA on its base: pipe = DiffusionPipeline.from_pretrained('<base>');
              pipe.load_lora_weights('out', weight_name='pytorch_lora_weights.safetensors')
    AUTOMATIC1111 / ComfyUI / kohya: where the single file or the kohya LoRA file goes

A folder exported from a LoRA run already has the LoRA fused in: it is loaded as it is, never
with the LoRA put on a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..models.lora import LORA_WEIGHTS
from .export import is_sd15_architecture

__all__ = ["Advice", "loading_advice"]


@dataclass
class Advice:
    tool: str  # "diffusers", "one file", "LoRA on its base", "AUTOMATIC1111", ...
    text: str  # a statement that runs (diffusers), or where the file goes (the other tools)
    code: bool = False  # `text` runs as printed, with diffusers' pipelines imported

    def __str__(self) -> str:
        return f"{self.tool}: {self.text}"


def loading_advice(out, written, source, base: str | None = None) -> list[Advice]:
    """The ways to load this export. `source`: the exported run or model folder; `base`: a
    LoRA run's base model (a folder or hub id), where the LoRA alone is to be loaded."""
    out, names = Path(out), {Path(p).name for p in written}
    folder = "model_index.json" in names  # a diffusers folder (a LoRA run's: fused in)
    lora = LORA_WEIGHTS in names
    kohya = sorted(n for n in names if n.endswith(".safetensors")
                   and n not in (LORA_WEIGHTS, "model.safetensors"))
    # a diffusers folder of the same architecture: what from_single_file needs as config=
    config = str(out) if folder else str(base) if lora and base else str(source)
    standard = is_sd15_architecture(config)
    advice = []
    if folder:
        fused = "  # the LoRA is fused in: load it as it is" if lora else ""
        advice.append(Advice("diffusers", f"pipe = DiffusionPipeline.from_pretrained("
                                          f"{str(out)!r}){fused}", code=True))
    if "model.safetensors" in names:
        advice.append(Advice("one file", f"pipe = StableDiffusionPipeline.from_single_file("
                                         f"{str(out / 'model.safetensors')!r}, "
                                         f"config={config!r})", code=True))
        advice.append(Advice("AUTOMATIC1111", "model.safetensors into "
                             "models/Stable-diffusion/" if standard else _not_sd15("model")))
        advice.append(Advice("ComfyUI", "model.safetensors into models/checkpoints/"
                             if standard else _not_sd15("model")))
    if lora and base:
        advice.append(Advice("LoRA on its base", f"pipe = DiffusionPipeline.from_pretrained("
                                                 f"{str(base)!r}); pipe.load_lora_weights("
                                                 f"{str(out)!r}, weight_name={LORA_WEIGHTS!r})",
                             code=True))
    for name in kohya:
        advice.append(Advice("AUTOMATIC1111", f"{name} into models/Lora/, then "
                                              f"<lora:{Path(name).stem}:1> in the prompt"))
        advice.append(Advice("ComfyUI", f"{name} into models/loras/ (its LoraLoader reads "
                                        f"this file whole; {LORA_WEIGHTS} only in part)"))
    return advice


def _not_sd15(what: str) -> str:
    return (f"not Stable Diffusion 1.5's own shapes: this {what} file loads in diffusers "
            f"(from_single_file with config=), not here")
