"""Loading the parts of a Stable Diffusion model, and freezing what is not trained.

A Stable Diffusion checkpoint in the diffusers layout is a folder (or a hub repo) with one
subfolder per part: `tokenizer` + `text_encoder` turn the prompt into vectors, `vae` maps
pictures to and from the small latent space where diffusion happens, `unet` predicts the noise,
and `scheduler` says how much noise each timestep adds. DreamBooth trains the UNet (optionally
the text encoder) and keeps the rest frozen.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.callbacks import warn
from ..core.errors import DreamkitError, ModelError
from ..core.prompts import token_ids
from .lora import is_lora_run
from .sdxl import encode_sdxl, is_sdxl, load_sdxl_encoders
from .source import check_model_source
from .tokens import SD_VOCABULARY, sd_vocabulary_tokenizer

# diffusers, transformers: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["Components", "load_components", "freeze", "build_pipeline", "load_pipeline",
           "encode_prompts", "text_states", "place_for_training", "offload_text_encoders",
           "check_model_source", "load_tokenizer"]



@dataclass
class Components:
    tokenizer: object
    text_encoder: torch.nn.Module
    vae: torch.nn.Module
    unet: torch.nn.Module
    noise_scheduler: object
    source: str = ""
    tokenizer_2: object = None  # SDXL's second tokenizer and text encoder (dreamkit.sdxl)
    text_encoder_2: torch.nn.Module | None = None

    @property
    def is_sdxl(self) -> bool:
        return is_sdxl(self.unet)


def load_tokenizer(name_or_path: str, revision: str | None = None):
    """Only the tokenizer of a model (for the rare-token check: quick, no weights).
    "sd-vocabulary" is the CLIP vocabulary every Stable Diffusion uses, shipped with dreamkit."""
    from transformers import CLIPTokenizer

    if name_or_path == SD_VOCABULARY:
        return sd_vocabulary_tokenizer()
    check_model_source(name_or_path, allow_pickle=True)  # weights are not read here
    hint = (f"check the id or folder, or check against the vocabulary every Stable Diffusion "
            f"uses, shipped with dreamkit: --model {SD_VOCABULARY}")
    try:
        tokenizer = CLIPTokenizer.from_pretrained(name_or_path, subfolder="tokenizer",
                                                  revision=revision)
    except (OSError, ValueError) as e:
        raise ModelError(f"pretrained_model_name_or_path={name_or_path!r}: its tokenizer could "
                         f"not be loaded ({str(e).splitlines()[0]}); {hint}") from None
    # Offline, transformers may hand back an empty tokenizer (its two special tokens) instead
    # of failing; any tokenizer of a real model has at least its 512 byte tokens.
    if len(tokenizer) < 512:
        why = ("it is not among the models downloaded to this machine, and HF_HUB_OFFLINE=1 "
               "keeps the hub out" if os.environ.get("HF_HUB_OFFLINE") == "1" else
               f"transformers gave back an empty one ({len(tokenizer)} tokens)")
        raise ModelError(f"pretrained_model_name_or_path={name_or_path!r}: its tokenizer could "
                         f"not be loaded: {why}; {hint}")
    return tokenizer


def load_components(name_or_path: str, revision: str | None = None,
                    variant: str | None = None, allow_pickle: bool = False,
                    vae_path: str | None = None, report=warn) -> Components:
    """Load tokenizer, text encoder, VAE, UNet and noise scheduler (fp32, on the CPU).

    Weights load from safetensors only unless `allow_pickle` (pickled .bin files can run code).
    """
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    check_model_source(name_or_path, allow_pickle=allow_pickle, report=report)
    if allow_pickle:
        report("warning: allow_pickle=True: pickled weight files may be loaded; only do this "
              "for models whose source you trust")
    quiet_loading()
    kw = dict(revision=revision)
    safe = dict(use_safetensors=None if allow_pickle else True)  # None: prefer, fall back
    # Trained weights must be fp32 (fp16 ones cannot take an optimizer step); frozen parts are
    # cast later to the device's dtype.
    f32 = torch.float32
    try:
        tokenizer = CLIPTokenizer.from_pretrained(name_or_path, subfolder="tokenizer", **kw)
        text_encoder = CLIPTextModel.from_pretrained(name_or_path, subfolder="text_encoder",
                                                     variant=variant, dtype=f32, **safe, **kw)
        vae = AutoencoderKL.from_pretrained(name_or_path, subfolder="vae", variant=variant,
                                            torch_dtype=f32, **safe, **kw)
        unet = UNet2DConditionModel.from_pretrained(name_or_path, subfolder="unet",
                                                    variant=variant, torch_dtype=f32, **safe,
                                                    **kw)
        # DDPM's noising rule is what training uses, whatever sampler the model ships with.
        noise_scheduler = DDPMScheduler.from_pretrained(name_or_path, subfolder="scheduler", **kw)
    except (OSError, ValueError, EnvironmentError) as e:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        why = " (HF_HUB_OFFLINE=1 is set, so nothing can be downloaded)" if offline else ""
        raise ModelError(f"pretrained_model_name_or_path={name_or_path!r} could not be loaded"
                         f"{why}: {str(e).splitlines()[0]}. Check the id or folder, the "
                         f"revision={revision!r} and variant={variant!r}, and your network or "
                         f"hub login") from None
    comps = Components(tokenizer, text_encoder, vae, unet, noise_scheduler, source=name_or_path)
    if is_sdxl(unet):
        comps.tokenizer_2, comps.text_encoder_2 = load_sdxl_encoders(
            name_or_path, revision=revision, variant=variant, **safe)
    if vae_path:  # e.g. an fp16-safe SDXL VAE
        try:
            comps.vae = AutoencoderKL.from_pretrained(vae_path, torch_dtype=f32, **safe, **kw)
        except (OSError, ValueError) as e:
            raise ModelError(f"pretrained_vae_model_name_or_path={vae_path!r} could not be "
                             f"loaded: {str(e).splitlines()[0]}") from None
    return comps


def quiet_loading() -> None:
    """Hide the libraries' per-file loading bars; dreamkit shows its own progress."""
    import diffusers
    import transformers
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()


def place_for_training(comps: Components, config, device) -> torch.dtype:
    """Freeze the parts that do not train and put every part on `device`; return the frozen
    parts' dtype. They run in the mixed-precision dtype to save memory; trained weights stay
    fp32 (small updates vanish in half precision)."""
    if comps.is_sdxl and config.train_text_encoder:
        raise DreamkitError("train_text_encoder=True: with SDXL dreamkit keeps both text "
                            "encoders frozen; set train_text_encoder=False (use_lora=True is "
                            "the usual SDXL DreamBooth recipe)")
    dtype = config.precision.frozen_dtype()
    frozen_encoders = [comps.text_encoder_2] if comps.is_sdxl else []
    freeze(comps.vae, comps.text_encoder, *frozen_encoders)
    comps.vae.to(device, dtype)
    for encoder in frozen_encoders:
        encoder.to(device, dtype)
    comps.text_encoder.to(device, torch.float32 if config.train_text_encoder else dtype)
    return dtype


def offload_text_encoders(comps: Components, device) -> None:
    """Frozen text encoders whose prompts are all cached wait on the CPU (GPU memory)."""
    if torch.device(device).type != "cpu":
        comps.text_encoder.to("cpu")
        if comps.is_sdxl:
            comps.text_encoder_2.to("cpu")


def freeze(*modules: torch.nn.Module) -> None:
    """No gradients and eval mode: frozen parts cost no gradient memory."""
    for m in modules:
        m.requires_grad_(False)
        m.eval()


def build_pipeline(c: Components, unet=None, scheduler: str = "ddim", text_encoder=None):
    """A StableDiffusionPipeline from loaded parts (no reload from disk).

    DDIM samples well in 25-50 steps; the training (DDPM) scheduler would need ~1000.
    """
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
    )

    sched_cls = {"ddim": DDIMScheduler, "dpm": DPMSolverMultistepScheduler}[scheduler]
    if c.is_sdxl:
        return StableDiffusionXLPipeline(
            vae=c.vae, text_encoder=text_encoder or c.text_encoder, tokenizer=c.tokenizer,
            text_encoder_2=c.text_encoder_2, tokenizer_2=c.tokenizer_2, unet=unet or c.unet,
            scheduler=sched_cls.from_config(c.noise_scheduler.config))
    return StableDiffusionPipeline(
        vae=c.vae, text_encoder=text_encoder or c.text_encoder, tokenizer=c.tokenizer,
        unet=unet or c.unet,
        scheduler=sched_cls.from_config(c.noise_scheduler.config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)


@contextlib.contextmanager
def _silent(*loggers):
    """Loggers quiet for a block whose failure dreamkit reports itself, in one line."""
    levels = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def load_pipeline(name_or_path: str, device=None, dtype=None, revision=None, variant=None,
                  lora: str | None = None, base: str | None = None):
    """Load a whole pipeline for generation: a trained run folder, a base model, or any
    diffusers folder. A LoRA run folder loads its base model (from its config.json, or `base`)
    with the adapters on top; `lora` puts a LoRA file or folder on any model."""
    from diffusers import DiffusionPipeline

    if is_lora_run(name_or_path):
        saved = Path(name_or_path) / "config.json"
        if base is None and saved.is_file():
            base = json.loads(saved.read_text()).get("pretrained_model_name_or_path")
        if not base:
            raise ModelError(f"model={name_or_path!r} holds LoRA weights only and no config.json "
                             f"naming its base model; pass base= (--base) with that model")
        return load_pipeline(base, device, dtype, revision, variant, lora=name_or_path)
    check_model_source(name_or_path, setting="model")
    quiet_loading()
    try:
        pipe = DiffusionPipeline.from_pretrained(name_or_path, torch_dtype=dtype, revision=revision,
                                                 variant=variant, safety_checker=None,
                                                 use_safetensors=True)
    except (OSError, ValueError) as e:
        raise ModelError(f"model={name_or_path!r} could not be loaded: "
                         f"{str(e).splitlines()[0]}") from None
    if lora is not None:
        try:
            with _silent("diffusers", "peft"):  # diffusers logs every size mismatch first
                pipe.load_lora_weights(str(lora))
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            why = "its layers have other sizes: it was made for another model (SD 1.5, SD 2 " \
                "and SDXL LoRAs do not fit each other)" if "size mismatch" in str(e) else \
                (str(e).splitlines()[0] if str(e) else type(e).__name__)
            raise ModelError(f"lora={str(lora)!r} could not be loaded onto {name_or_path!r}: "
                             f"{why}; give a pytorch_lora_weights.safetensors (or its folder) "
                             f"trained on this base model") from None
    if device is not None:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _encode(tokenizer, text_encoder, prompts, device, mask: bool = False):
    """Hidden states of `prompts`; with `mask` the padding after each prompt is hidden from
    attention (text_encoder_use_attention_mask)."""
    if not mask:
        return text_encoder(token_ids(tokenizer, prompts, device))[0]
    t = tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length,
                  truncation=True, return_tensors="pt")
    return text_encoder(t.input_ids.to(device), attention_mask=t.attention_mask.to(device))[0]


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts, device, cache: dict | None = None,
                   mask: bool = False):
    """Prompt strings -> text-encoder hidden states; cached, since the encoder is frozen."""
    cache = {} if cache is None else cache
    for p in dict.fromkeys(prompts):
        if p not in cache:
            cache[p] = _encode(tokenizer, text_encoder, [p], device, mask)
    return torch.cat([cache[p] for p in prompts])


def text_states(comps, prompts, n_instance, device, cache, trainable: bool, mask: bool = False):
    """Text-encoder states for the batch: cached while the encoder is frozen; computed with
    gradients, one tensor per half, while it trains (two_pass backpropagates the halves
    separately, so they must not share one graph). `mask`: text_encoder_use_attention_mask."""
    if comps.is_sdxl:  # both encoders, frozen (dreamkit.sdxl)
        return encode_sdxl(comps, prompts, device, cache)[0]
    if not trainable:
        return encode_prompts(comps.tokenizer, comps.text_encoder, prompts, device, cache,
                              mask).float()
    halves = [prompts[:n_instance], prompts[n_instance:]]
    states = [_encode(comps.tokenizer, comps.text_encoder, h, device, mask) for h in halves if h]
    return tuple(states) if len(states) == 2 else states[0]
