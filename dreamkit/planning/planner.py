"""Will this configuration fit the GPU? `plan(config)` answers before any weight is loaded.

It builds the UNet of the configured model on the **meta** device (shapes, no data), runs the
real training step of dreamkit.train on it with the configured switches (step mode, batch,
resolution, LoRA, gradient checkpointing, the optimizer step inside backward) and counts the
peak of live tensor bytes (dreamkit.memory). To that it adds what the step does not hold: the
frozen VAE and text encoder(s) on the GPU, 8-bit optimizer states where chosen (by arithmetic:
bitsandbytes does not run on meta tensors) and a stated margin for the CUDA context and the
allocator. It then tries the usual memory savers, cheapest first, and lists those that fit.

With step_mode='auto' (and prior preservation) it runs the step in both modes and chooses:
two backward passes where they lower the peak enough to pay for their time (step.py's
`mode_from_peaks`), one otherwise. The plan carries that choice; train(config, plan=plan)
uses it.

Mixed precision is approximated: the step is counted with the UNet in bf16 (activations at 2
bytes), plus the fp32 weights (and fp32 gradients) that mixed-precision training keeps and
autocast's fp16 copies of the weights: all of them with autocast's cache (no gradient
checkpointing), or only those alive at once without it (memory._copies_per_op; dreamkit turns
the cache off with gradient checkpointing, run.py). fp32 configurations are counted exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..core.errors import ConfigError
from ..models.loading import quiet_loading
from ..models.lora import add_lora_as_configured
from ..training.step import mode_from_peaks, settled_step_mode
from .memory import full_step_peak
from .plancache import cached_measure
from .recipes import RECIPES, T4_SETTINGS
from .shapes import meta_models

# diffusers, huggingface_hub, transformers: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["plan", "MemoryPlan", "GPUS", "T4_SETTINGS", "RECIPES", "rank_recipes"]

GiB = 2**30
GPUS = {"T4": 15.0, "L4": 22.0, "A10G": 22.0, "V100": 16.0, "A100-40GB": 39.4,
        "A100-80GB": 79.2, "H100": 79.2}  # GiB usable
# Peak dense TFLOPS by arithmetic (NVIDIA datasheets; fp16/bf16 on tensor cores, None: not
# supported). A step cannot run faster than its FLOPs at this peak: the plan's time floor.
PEAK_TFLOPS = {"T4": {"fp32": 8.1, "fp16": 65.0, "bf16": None},
               "L4": {"fp32": 30.3, "fp16": 121.0, "bf16": 121.0},
               "A10G": {"fp32": 31.2, "fp16": 125.0, "bf16": 125.0},
               "V100": {"fp32": 15.7, "fp16": 125.0, "bf16": None},
               "A100-40GB": {"fp32": 19.5, "fp16": 312.0, "bf16": 312.0},
               "A100-80GB": {"fp32": 19.5, "fp16": 312.0, "bf16": 312.0},
               "H100": {"fp32": 67.0, "fp16": 989.0, "bf16": 989.0}}
CONTEXT_GIB = 0.45  # CUDA context + cuBLAS/cuDNN workspaces, measured range 0.3-0.6
FRAGMENTATION = 0.05  # allocator slack on top of live tensors


@dataclass
class MemoryPlan:
    parts: dict  # name -> bytes
    gpu: str
    capacity: float  # GiB
    suggestions: list = field(default_factory=list)  # (change dict, total GiB)
    step_mode: str = ""  # the mode train() will use with this plan, and why
    step_mode_reason: str = ""
    flops: int = 0  # one training step's floating-point operations (UNet forward + backward)
    arithmetic: str = "fp32"  # what the UNet's matmuls run in: fp32, fp16 or bf16
    assumed: str = ""  # the architecture planned when the model could not be read (shapes.py)

    @property
    def peak_tflops(self) -> float | None:
        return PEAK_TFLOPS.get(self.gpu, {}).get(self.arithmetic)

    @property
    def time_floor(self) -> float | None:
        """Seconds per step at the GPU's peak for this arithmetic: no run is faster (real
        ones reach perhaps 30-60 % of it). None for a GPU or dtype without a figure."""
        peak = self.peak_tflops
        return self.flops / (peak * 1e12) if peak and self.flops else None

    def time_text(self) -> str:
        if self.time_floor is None:
            return f"{self.flops / 1e12:.1f} TFLOP per step"
        return (f"≥ {self.time_floor:.2f} s/step ({self.flops / 1e12:.1f} TFLOP at "
                f"{self.peak_tflops:g} TFLOPS {self.arithmetic})")

    @property
    def total(self) -> float:
        return sum(self.parts.values()) / GiB

    @property
    def fits(self) -> bool:
        return self.total <= self.capacity

    def line(self) -> str:
        verdict = "fits" if self.fits else "does NOT fit"
        assumed = f"{self.assumed}. " if self.assumed else ""  # never a silent guess
        text = f"{assumed}memory plan: ~{self.total:.1f} GiB peak on {self.gpu} ({self.capacity:.1f} GiB): {verdict}"
        if not self.fits and self.suggestions:
            change, total = self.suggestions[0]
            text += f"; try {_fmt(change)} (~{total:.1f} GiB)"
        if self.flops:
            text += f"; time {self.time_text()}"
        return text

    def text(self) -> str:
        width = max(map(len, self.parts), default=0) + 1
        rows = [self.line()] + [f"  {k:{width}}{v / GiB:7.2f} GiB" for k, v in self.parts.items()]
        if self.step_mode:
            rows.append(f"  step mode: {self.step_mode} ({self.step_mode_reason})")
        if self.suggestions:
            rows.append("  changes that fit, cheapest first:")
            rows += [f"    {_fmt(c)}: ~{t:.1f} GiB" for c, t in self.suggestions]
        return "\n".join(rows)


def _fmt(change: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in change.items())


def _measure(config, mode: str) -> tuple[dict, int, str]:
    """_measure_step, made once per model, settings and mode (plancache.py)."""
    return cached_measure(config, mode, _measure_step)


def _measure_step(config, mode: str) -> tuple[dict, int, str]:
    """The planned parts (bytes) of training `config` with the step in `mode`, the step's
    FLOPs, and the architecture assumed if the model was unreadable."""
    from diffusers import (
        DDPMScheduler,  # diffusers: heavy, imported when a plan is made
    )

    quiet_loading()
    precision = config.precision
    mixed = precision.mixed
    shapes = meta_models(config.pretrained_model_name_or_path)
    models = shapes.parts
    unet, vae = models["unet"], models["vae"]
    te_bytes_per = sum(p.numel() for k in ("text_encoder", "text_encoder_2") if k in models
                       for p in models[k].parameters())
    if mixed:
        unet.to(torch.bfloat16)  # activations and autocast copies at 2 bytes
    params = None
    if config.use_lora:
        params = add_lora_as_configured(unet, config)
    latent = config.resolution // 2 ** (len(vae.config.block_out_channels) - 1)
    sched = DDPMScheduler(num_train_timesteps=1000)
    attention = "gpu_fp16" if mixed else "gpu_fp32"
    step = full_step_peak(unet, sched, config, latent, attention, params=params, mode=mode,
                          batch=config.train_batch_size, with_prior=config.prior_preservation)
    # With mixed precision the counted UNet trained in bf16; real training keeps fp32 masters
    # (and fp32 optimizer states and gradients) of what trains. LoRA adapters are fp32 anyway.
    full_mixed = mixed and not config.use_lora
    trained = step["trained_bytes"]
    if config.use_8bit_adam:
        states = step["peak_8bit_adam_bytes"] - step["peak_adamw_bytes"] \
            + step["adamw_states_bytes"]
    else:
        states = step["adamw_states_bytes"] * (2 if full_mixed else 1)
    parts = {"weights (UNet)": step["weights_bytes"], "optimizer states": states,
             "activations + gradients": step["step_peak_above_states_bytes"]}
    if full_mixed:  # the weights are fp32; autocast's fp16 copies of them come and go
        parts["weights (UNet)"] = 2 * trained
        parts["fp16 weight copies"] = step["weights_bytes"] if precision.autocast_cache \
            else step["copies_per_op_bytes"]
        if not config.optimizer_in_backward:
            parts["fp32 gradients (extra)"] = trained
    dtype_bytes = precision.bytes_per_value
    frozen = 0 if config.cache_latents else sum(p.numel() for p in vae.parameters()) * dtype_bytes
    te_bytes = te_bytes_per  # values of the text encoder(s)
    if config.train_text_encoder or not config.precompute_text_embeddings:
        frozen += te_bytes * (4 if config.train_text_encoder else dtype_bytes)
    parts["frozen VAE + text encoder"] = frozen
    if config.train_text_encoder:
        parts["text encoder training"] = te_bytes * (4 + (2 if config.use_8bit_adam else 8))
    tensors = sum(parts.values())
    parts["allocator slack (5%)"] = int(tensors * FRAGMENTATION)
    parts["CUDA context"] = int(CONTEXT_GIB * GiB)
    return parts, step["flops"], shapes.assumed


CANDIDATES = [  # the usual savers, cheapest in quality and speed first
    {"use_8bit_adam": True},
    {"cache_latents": True, "precompute_text_embeddings": True},
    {"gradient_checkpointing": True},
    {"optimizer_in_backward": True, "step_mode": "auto", "gradient_accumulation_steps": 1},
    {"use_lora": True, "learning_rate": 1e-4},
]


def plan(config, gpu: str | None = None, suggest: bool = True) -> MemoryPlan:
    """Estimated peak GPU memory of training `config` on `gpu` (default: the GPU here, else a
    T4), its parts, its FLOPs and time floor, the step mode train() should use, and the
    cheapest changes that fit. Plans are kept and reused (plancache.py)."""
    if gpu is None and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        capacity = torch.cuda.get_device_properties(0).total_memory / GiB
    else:
        name = gpu or "T4"
        if name not in GPUS:
            raise ConfigError("gpu", name, f"choose one of {', '.join(GPUS)}")
        capacity = GPUS[name]
    mode, why, (parts, counted, assumed) = _choose_mode(config)
    result = MemoryPlan(parts, name, capacity, step_mode=mode, step_mode_reason=why,
                        flops=counted or 0, arithmetic=config.precision.arithmetic,
                        assumed=assumed)
    if suggest and not result.fits:
        result.suggestions = _suggestions(config, capacity, mode)
    return result


def _total(parts: dict) -> float:
    return sum(parts.values()) / GiB


def _choose_mode(config) -> tuple[str, str, tuple[dict, int, str]]:
    """The step mode and its planned parts. Where the settings leave `auto` open
    (step.settled_step_mode), both modes are measured and two passes kept only where they
    lower the peak enough (step.mode_from_peaks)."""
    settled = settled_step_mode(config)
    if settled is not None:
        return *settled, _measure(config, settled[0])
    # Both modes run the same operations (two passes split the batch): one count serves both.
    one, two = _measure(config, "one_pass"), _measure(config, "two_pass")
    mode, why = mode_from_peaks(_total(one[0]), _total(two[0]))
    return mode, why, one if mode == "one_pass" else (two[0], *one[1:])


def _suggestions(config, capacity: float, mode: str) -> list:
    """Savers added one by one until the estimate fits; the changes that fit."""
    found, change = [], {}
    for candidate in CANDIDATES:
        if all(getattr(config, k) == v for k, v in candidate.items()):
            continue
        change = {**change, **candidate}
        try:
            trial = config.replace(**change)
        except ConfigError:  # a combination the config refuses
            continue
        # the mode the change settles, else the base plan's: one measurement per trial
        trial_mode = (settled_step_mode(trial) or (mode,))[0]
        total = _total(_measure(trial, trial_mode)[0])
        if total <= capacity:
            found.append((dict(change), total))
            break
    return found


def rank_recipes(config, gpu: str = "T4") -> list:
    """[(name, MemoryPlan)] of `config` with each of RECIPES on `gpu`: the recipes that fit
    first, fastest (lowest time floor) first, then those that do not fit."""
    plans = []
    for name, settings in RECIPES.items():
        try:
            trial = config.replace(**settings)
        except ConfigError:  # a recipe this config cannot take (e.g. SDXL-only settings)
            continue
        plans.append((name, plan(trial, gpu=gpu, suggest=False)))
    return sorted(plans, key=lambda np_: (not np_[1].fits, np_[1].time_floor or float("inf")))
