"""TrainConfig's checks: every setting alone, then settings together, then what training needs.

One place for the rules, whoever builds the config (the CLI, a config file, a notebook form, a
widget, Python): a refused value raises `ConfigError` naming the setting, the value and the fix.
Types come first, from each field's default (a switch is true or false, a count is a whole
number, a rate a finite number), because a config file or a form may hold "1e-4" in quotes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from . import checks, prompts
from .concepts import class_jobs
from .errors import ConfigError

__all__ = ["validate", "check_ready", "check_folders", "prior_weight_error", "STEP_MODES",
           "LR_SCHEDULERS", "MIXED_PRECISION", "SAVE_PRECISIONS", "OPTIMIZERS", "TRACKERS",
           "DEFAULT_PRIOR_LOSS_WEIGHT",
           "MAX_STEPS", "MAX_RESOLUTION", "MAX_LORA_RANK", "MAX_CLASS_IMAGES"]

STEP_MODES = ("auto", "one_pass", "two_pass")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts",
                 "polynomial")
MIXED_PRECISION = ("no", "fp16", "bf16")
SAVE_PRECISIONS = ("auto", "fp16", "fp32")
OPTIMIZERS = ("adamw", "prodigy")
TRACKERS = ("none", "tensorboard", "wandb")
DEFAULT_PRIOR_LOSS_WEIGHT = 1.0
# Bounds for typos (an extra 0 or three), each far beyond any real run; the model-specific
# bounds (resolution against the model's own size, rank against its layers) are checked when
# the model is known (training/bounds.py).
MAX_STEPS = 1_000_000  # real runs use 400-2000
MAX_RESOLUTION = 4096  # SDXL is trained at 1024; 4096 px already needs ~16x its memory
MAX_LORA_RANK = 1024  # 4-128 is usual; SD's widest attention layers have 1280 features
MAX_CLASS_IMAGES = 10_000  # 100-200 is usual; 10,000 take hours to draw and GBs to keep


def prior_weight_error(weight) -> ConfigError:
    """The one prior-preservation rule, as CLI, widgets and Python say it: a weight other than
    the default without the switch would be silently ignored, so it is refused."""
    return ConfigError("prior_loss_weight", weight,
                       "has no effect while with_prior_preservation is off: turn prior "
                       "preservation on (--with_prior_preservation), or leave "
                       f"prior_loss_weight at {DEFAULT_PRIOR_LOSS_WEIGHT}")


def _check_types(cfg) -> None:
    """Each field as its default's kind: a switch true or false (a config file may say "false"
    in quotes, which Python would take as true), text as text, a list as a list, a count a whole
    number, a rate a finite number; fields that may be empty (None) say so in their `type`."""
    for f in dataclasses.fields(cfg):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        v, kind = getattr(cfg, f.name), f.metadata.get("type")
        if v is None and kind is not None:
            continue
        if isinstance(default, bool):
            if not isinstance(v, bool):
                raise ConfigError(f.name, v, "must be true or false (without quotes in a "
                                  "config file)")
        elif isinstance(default, str) or kind is str:
            if not isinstance(v, str):
                raise ConfigError(f.name, v, "must be text")
        elif isinstance(default, list):
            if not isinstance(v, list):
                raise ConfigError(f.name, v, "must be a list")
        elif isinstance(default, int):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f.name, v, "must be a whole number (without quotes in a "
                                  "config file)")
        elif isinstance(default, float) or kind is float:
            checks.number(f.name, v)


def validate(cfg) -> None:
    """Raise ConfigError naming the first field that cannot work, its value and the fix."""
    def need(ok: bool, name: str, fix: str):
        if not ok:
            raise ConfigError(name, getattr(cfg, name), fix)

    _check_types(cfg)
    need(cfg.pretrained_model_name_or_path.strip() != "", "pretrained_model_name_or_path",
         "give a hub id such as 'stable-diffusion-v1-5/stable-diffusion-v1-5' or a local "
         "diffusers folder")
    need(cfg.output_dir.strip() != "", "output_dir", "give a folder name such as 'runs/my-dog' "
         "(an empty name would write into the current folder)")
    checks.identifier("identifier", cfg.identifier)
    for name in ("resolution", "max_train_steps", "train_batch_size",
                 "gradient_accumulation_steps", "sample_steps",
                 "sample_batch_size", "class_inference_steps", "lora_rank"):
        checks.whole(name, getattr(cfg, name), 1)
    need(cfg.max_train_steps <= MAX_STEPS, "max_train_steps",
         f"more than {MAX_STEPS:,} steps is a typo, not a DreamBooth run (400-2000 is usual)")
    need(cfg.resolution <= MAX_RESOLUTION, "resolution", f"beyond {MAX_RESOLUTION} px no "
         f"Stable Diffusion model was trained, and memory runs out: 512 for SD 1.5, 1024 SDXL")
    need(cfg.lora_rank <= MAX_LORA_RANK, "lora_rank", f"beyond {MAX_LORA_RANK} a LoRA is as big "
         f"as the layers it adapts (a file of GBs): 4-32 is usual, 128 is large")
    need(cfg.num_class_images <= MAX_CLASS_IMAGES, "num_class_images",
         f"more than {MAX_CLASS_IMAGES:,} class images take hours to draw: 100-200 is usual")
    checks.whole("num_sample_images", cfg.num_sample_images, 0, 64)  # 0: no sample grids
    checks.prompt_list("class_prompt_variants", cfg.class_prompt_variants)
    for name in ("instance_prompt", "class_prompt", "class_prompt_variants"):
        texts = getattr(cfg, name)  # templates checked as they are typed
        for text in texts if isinstance(texts, list) else [texts]:
            if text.strip():
                prompts.fill_template(text, cfg.identifier, cfg.class_noun or "x", setting=name)
    need(cfg.resolution % 8 == 0, "resolution",
         f"must be a multiple of 8 (the VAE shrinks images 8×); try "
         f"{max(8, cfg.resolution // 8 * 8)} or {cfg.resolution // 8 * 8 + 8}")
    checks.seed("seed", cfg.seed)
    for name in ("learning_rate", "max_grad_norm", "adam_epsilon"):
        checks.number(name, getattr(cfg, name), above=0)
    for name, hint in (("text_encoder_lr", "learning_rate"), ("lora_alpha", "lora_rank")):
        if getattr(cfg, name) is not None:
            checks.number(name, getattr(cfg, name), above=0, hint=f", or empty to use {hint}")
    need(all(m for m in cfg.lora_target_modules if isinstance(m, str)) and
         all(isinstance(m, str) for m in cfg.lora_target_modules), "lora_target_modules",
         "give a list of layer names such as ['to_q', 'to_v'], or an empty list for the "
         "default")
    checks.number("prior_loss_weight", cfg.prior_loss_weight, 0, hint=" (0.1-1.0 is usual)")
    if cfg.with_prior_preservation:
        need(cfg.prior_loss_weight > 0, "prior_loss_weight", "is 0 while "
             "with_prior_preservation is on: give a weight above 0 (0.1-1.0 is usual), or "
             "turn with_prior_preservation off")
    elif cfg.prior_loss_weight != DEFAULT_PRIOR_LOSS_WEIGHT:
        raise prior_weight_error(cfg.prior_loss_weight)
    checks.number("adam_weight_decay", cfg.adam_weight_decay, 0)
    need(0 <= cfg.adam_beta1 < 1, "adam_beta1", "must be in [0, 1)")
    need(0 <= cfg.adam_beta2 < 1, "adam_beta2", "must be in [0, 1)")
    checks.number("guidance_scale", cfg.guidance_scale, 0, hint=" (7.5 is usual)")
    for name, choices in (("lr_scheduler", LR_SCHEDULERS), ("step_mode", STEP_MODES),
                          ("mixed_precision", MIXED_PRECISION),
                          ("save_precision", SAVE_PRECISIONS), ("optimizer", OPTIMIZERS),
                          ("report_to", TRACKERS)):
        need(getattr(cfg, name) in choices, name, f"choose one of {', '.join(choices)}")
    checks.prompt_list("sample_prompts", cfg.sample_prompts)
    _check_knobs(cfg, need)
    _check_combinations(cfg, need)


def _check_knobs(cfg, need) -> None:
    """The field's usual knobs (docs/knobs.md), each with the range where it means something."""
    if cfg.snr_gamma is not None:
        checks.number("snr_gamma", cfg.snr_gamma, above=0, hint=" (5 is usual), or empty for "
                      "no Min-SNR weighting")
    checks.number("noise_offset", cfg.noise_offset, 0, hint=" (0.05-0.1 is usual; 0 = off)")
    need(cfg.noise_offset <= 1, "noise_offset", "above 1 the offset outweighs the noise "
         "itself: 0.05-0.1 is usual")
    checks.number("lora_dropout", cfg.lora_dropout, 0)
    need(cfg.lora_dropout < 1, "lora_dropout", "must be below 1 (0-0.1 is usual)")
    checks.whole("repeats", cfg.repeats, 1, 10_000)
    checks.whole("num_train_epochs", cfg.num_train_epochs, 0, 100_000)
    checks.whole("lr_num_cycles", cfg.lr_num_cycles, 1, 10_000)
    checks.number("lr_power", cfg.lr_power, above=0)
    if cfg.prodigy_beta3 is not None:
        need(0 <= cfg.prodigy_beta3 < 1, "prodigy_beta3", "must be in [0, 1), or empty")
    if cfg.optimizer == "prodigy":
        need(not cfg.use_8bit_adam, "use_8bit_adam", "8-bit states are bitsandbytes' AdamW; "
             "with optimizer='prodigy' turn use_8bit_adam off")
    if cfg.use_dora or cfg.lora_dropout:
        need(cfg.use_lora, "use_dora" if cfg.use_dora else "lora_dropout",
             "applies to LoRA adapters: turn use_lora on, or leave it off")
    if cfg.use_dora:  # measured: diffusers 0.42 reloads a text encoder's DoRA without its
        need(not cfg.train_text_encoder, "use_dora", "with train_text_encoder the saved text "
             "encoder's DoRA magnitudes do not load back in diffusers (its names differ under "
             "transformers 5): train the text encoder without DoRA (use_dora off) or freeze "
             "it (train_text_encoder off)")


def _check_combinations(cfg, need) -> None:
    """Settings that are fine alone but not together."""
    if cfg.optimizer_in_backward:
        need(cfg.optimizer == "adamw", "optimizer", "prodigy estimates its step size from all "
             "gradients at once, so it cannot update each weight inside backward: use adamw, "
             "or turn optimizer_in_backward off")
        need(cfg.step_mode != "two_pass", "step_mode", "optimizer_in_backward updates "
             "weights during backward, so both halves must be in one pass: use one_pass or "
             "auto, or turn optimizer_in_backward off")
        need(cfg.gradient_accumulation_steps == 1, "gradient_accumulation_steps",
             "optimizer_in_backward cannot add up gradients over steps: use 1")
    if cfg.concepts:
        cfg.resolved_concepts  # each concept's keys and types, named by index
        own = [isinstance(c, dict) and bool({"instance_dir", "instance_data_dir"} & set(c))
               for c in cfg.concepts]
        need(not str(cfg.instance_dir).strip() or not all(own), "instance_dir",
             "is not used: every entry of concepts has its own instance_dir; add this "
             "folder to concepts as one more subject, or leave instance_dir empty")
    if cfg.with_prior_preservation and not cfg.concepts:
        need(cfg.num_class_images > 0, "num_class_images",
             "prior preservation needs class images: use 100-200, or turn "
             "with_prior_preservation off")


def check_ready(cfg) -> None:
    """Raise ConfigError if something training needs is still unset.

    Separate from `validate` so that a config being filled in (a widget panel, a CLI
    default) can exist before the photos and the class are known.
    """
    validate(cfg)
    if cfg.concepts:
        concepts = cfg.resolved_concepts
        for i, c in enumerate(concepts):
            if not c.instance_dir.strip():
                raise ConfigError(f"concepts[{i}].instance_dir", c.instance_dir,
                                  "give the folder with this subject's photos")
        for d, prompt, num in class_jobs(concepts, cfg.with_prior_preservation):
            if num <= 0:
                raise ConfigError("num_class_images", num, f"prior preservation needs "
                                  f"class images of {prompt[0]!r}: use 100-200")
        check_folders(cfg)
        return
    if not str(cfg.instance_dir).strip():
        raise ConfigError("instance_dir", cfg.instance_dir,
                          "give the folder with 3-20 photos of your subject")
    check_folders(cfg)
    if not cfg.instance_prompt.strip() and not cfg.class_noun.strip():
        raise ConfigError("class_noun", cfg.class_noun,
                          "say what the subject is ('dog', 'person', 'backpack') so the "
                          "prompt 'a photo of zshq dog' can be made, or give instance_prompt")
    if cfg.with_prior_preservation and not (cfg.class_prompt.strip()
                                            or cfg.class_noun.strip()):
        raise ConfigError("class_prompt", cfg.class_prompt,
                          "prior preservation needs a class prompt such as 'a photo of a "
                          "dog': set class_prompt or class_noun, or turn "
                          "with_prior_preservation off")
    # Templates: an unknown {field} or a {class} without class_noun fails here, not later.
    cfg.resolved_instance_prompt
    if cfg.with_prior_preservation:
        cfg.resolved_class_prompt


def check_folders(cfg) -> None:
    """Inputs are read-only: no output or class folder that is, is inside, or holds a photo
    folder or a local base model (samples and class images would land among the photos, and
    the next run would train on them); the output folder must be writable."""
    inputs = {f"concepts[{i}].instance_dir" if cfg.concepts else "instance_dir":
              c.instance_dir for i, c in enumerate(cfg.resolved_concepts)}
    model = Path(cfg.pretrained_model_name_or_path).expanduser()
    if (model / "model_index.json").is_file():  # a local model folder
        inputs["pretrained_model_name_or_path"] = str(model)
    outputs = {"output_dir": cfg.output_dir,
               **{"class_dir": c.class_dir for c in cfg.resolved_concepts}}
    for out_name, out in outputs.items():
        checks.not_inside(out_name, out, inputs)
        filled = out_name == "class_dir" and Path(out).is_dir() and any(Path(out).iterdir())
        if not filled:  # class images of your own may sit in a read-only folder
            checks.writable(out_name, out)  # a read-only Drive folder: before anything loads
