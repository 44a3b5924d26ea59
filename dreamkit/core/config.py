"""TrainConfig: every DreamBooth knob, its default, and why it is there.

One dataclass drives the notebooks, the widgets and the CLI. Each field carries a one-line
reason (its `why`), which the CLI shows as `--help` and the widgets as tooltips. Validation
happens in `__post_init__`, so a bad value fails at once with a message naming the field, the
value and the fix, never halfway through a training run. A copy is saved as `config.json` next
to every output, and `TrainConfig.load()` reads it back.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .concepts import Concept, resolve_concepts
from .config_files import known_settings, read_settings, save_config, with_absolute_paths
from .precision import Precision
from .validate import (
    DEFAULT_PRIOR_LOSS_WEIGHT,
    LR_SCHEDULERS,
    MAX_STEPS,
    MIXED_PRECISION,
    OPTIMIZERS,
    SAVE_PRECISIONS,
    STEP_MODES,
    TRACKERS,
    check_ready,
    prior_weight_error,
    validate,
)

__all__ = ["TrainConfig", "knob_help", "prior_weight_error", "STEP_MODES", "LR_SCHEDULERS",
           "MIXED_PRECISION", "SAVE_PRECISIONS", "DEFAULT_PRIOR_LOSS_WEIGHT", "MAX_STEPS"]


def knob(default: Any, why: str, aliases: tuple = (), **kw):
    """A dataclass field with its reason attached (shown by `--help` and the widgets)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default),
                     metadata={"why": why, "aliases": aliases, **kw})
    return field(default=default, metadata={"why": why, "aliases": aliases, **kw})


@dataclass
class TrainConfig:
    # --- the model --------------------------------------------------------------------------
    pretrained_model_name_or_path: str = knob(
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        "base model: a hub id or a local folder in the diffusers layout (model_index.json)")
    pretrained_vae_model_name_or_path: str | None = knob(
        None, "a separate VAE (folder or hub id); for SDXL on fp16 GPUs an fp16-safe one such "
              "as madebyollin/sdxl-vae-fp16-fix (SDXL's own VAE overflows in fp16)",
        type=str)
    revision: str | None = knob(None, "hub revision (branch, tag or commit) of the base model")
    variant: str | None = knob(None, "weight variant to load, e.g. 'fp16' halves the download")
    allow_pickle: bool = knob(False, "also load pickled .bin/.ckpt weights; they can run code "
                                     "when loaded, so only for a source you trust (safetensors "
                                     "otherwise)")

    # --- the subject --------------------------------------------------------------------------
    instance_dir: str = knob("", "folder with 3-20 photos of your subject (searched recursively)",
                             aliases=("instance_data_dir",))
    identifier: str = knob("zshq", "rare token that will name your subject (one token with no "
                                   "meaning: `dreamkit check-token`); the paper's choice is a "
                                  "rarely used word the model has no meaning for")
    class_noun: str = knob("", "what your subject is (dog, person, backpack); anchors the "
                                  "identifier to what the model already knows")
    instance_prompt: str = knob("", "caption of every photo; empty = 'a photo of {token} "
                                    "{class}' ({token}, {class} are filled in)")
    use_captions: bool = knob(True, "a .txt file next to a photo is that photo's caption (it "
                                    "may use {token} and {class}); saying what else is in the "
                                    "photo keeps it out of the identifier")

    concepts: list = knob([], "several subjects in one run: a list of {instance_dir, "
                              "identifier, class_noun, instance_prompt, class_prompt, "
                              "class_dir, num_class_images}; keys left out come from the "
                              "settings above (a JSON file or text on the command line); "
                              "empty = the one subject above", aliases=("concepts_list",),
                      cli="json")

    # --- prior preservation (DreamBooth §3.3) ---------------------------------------------------
    with_prior_preservation: bool = knob(False, "also train on class images the frozen model "
                                                "made, so 'a dog' does not turn into your dog "
                                                "(off by default as in diffusers; the notebooks "
                                                "turn it on)")
    prior_loss_weight: float = knob(DEFAULT_PRIOR_LOSS_WEIGHT, "λ in the paper, 0.1-1.0: lower "
                                    "keeps more of the subject, higher keeps more of the class "
                                    "(only with with_prior_preservation)")
    class_prompt: str = knob("", "prompt for the class images; empty = 'a photo of {class_noun}'")
    class_prompt_variants: list = knob([], "more class prompts, drawn in turn with "
                                       "class_prompt ('a photo of a {class} on the beach'): "
                                       "prior preservation keeps the class only in the prompts "
                                       "its images were drawn with, so add the places and "
                                       "styles you will ask for")
    class_dir: str = knob("", "folder of class images (yours are used as they are, missing ones "
                              "are generated); empty = <output_dir>/class_images",
                         aliases=("class_data_dir",))
    num_class_images: int = knob(100, "how many class images; the paper suggests ~200 "
                                      "(100 is a good start on a T4)")
    sample_batch_size: int = knob(4, "images per batch when generating class images")
    class_inference_steps: int = knob(30, "denoising steps per class image")

    # --- training -----------------------------------------------------------------------------
    resolution: int = knob(512, "training size in pixels (multiple of 8): 512 for SD 1.5, "
                                "1024 for SDXL")
    center_crop: bool = knob(True, "centre-crop photos to a square (else resize the whole photo)")
    aspect_buckets: bool = knob(False, "train each photo at its own aspect ratio (kohya's "
                                       "buckets: sizes of about resolution² pixels, 1:2 to 2:1) "
                                       "instead of a centre-cropped square: nothing of a "
                                       "portrait's head or feet is cut; one bucket per batch")
    random_flip: bool = knob(False, "mirror each photo (and class image) at random: twice the "
                                    "views of a symmetric subject; off by default, since a "
                                    "mirrored asymmetric subject (a logo, a parting, text on "
                                    "it) is another subject")
    repeats: int = knob(1, "each photo counts this many times per epoch (kohya's repeats; "
                           "diffusers' --repeats)")
    num_train_epochs: int = knob(0, "train this many epochs instead of max_train_steps (an "
                                    "epoch: every photo × repeats, or every class image if "
                                    "there are more); 0 = use max_train_steps")
    train_batch_size: int = knob(1, "instance images per step (as many class images are added)")
    max_train_steps: int = knob(400, "optimizer steps; ~100 per photo is a common start, too many "
                                     "overfits (every sample looks like a training photo)")
    learning_rate: float = knob(5e-6, "5e-6 for the full UNet; 1e-6 keeps more editability, "
                                      "1e-4 is for LoRA")
    train_text_encoder: bool = knob(False, "also fine-tune the text encoder, as the paper does: "
                                           "the identifier's meaning moves too (helps faces; "
                                           "needs more memory)")
    text_encoder_lr: float | None = knob(None, "learning rate of the text encoder; empty = "
                                               "learning_rate", type=float)
    text_encoder_steps: int = knob(0, "train the text encoder only for the first N steps, then "
                                      "freeze it (0 = all steps)",
                                   aliases=("stop_text_encoder_training",))
    use_lora: bool = knob(False, "train LoRA adapters instead of the full UNet (and the text "
                                 "encoder's, with train_text_encoder): a few-MB result, less "
                                 "memory; use learning_rate ~1e-4", aliases=("lora",))
    lora_rank: int = knob(4, "LoRA rank: the adapters' width; 4-32 is usual, higher learns more "
                             "detail and makes a bigger file", aliases=("rank",))
    lora_alpha: float | None = knob(None, "LoRA scale numerator (update × alpha/rank); empty = "
                                          "rank", type=float)
    use_dora: bool = knob(False, "DoRA (peft): each adapted weight learns its size apart from "
                                 "its direction; often nearer full fine-tuning at one rank, "
                                 "slower per step")
    lora_dropout: float = knob(0.0, "dropout on the adapters' input (0-0.1): a regulariser "
                                    "against memorising the photos")
    lora_target_modules: list = knob([], "layers that get adapters; empty = the attention "
                                         "projections (to_q, to_k, to_v, to_out.0)")
    scale_lr: bool = knob(False, "multiply learning_rate by batch size × accumulation × "
                                 "processes, as diffusers' --scale_lr does")
    lr_scheduler: str = knob("constant", "how the learning rate changes over the run",
                             choices=LR_SCHEDULERS)
    lr_warmup_steps: int = knob(0, "steps to ramp the learning rate up from 0")
    lr_num_cycles: int = knob(1, "cosine_with_restarts: how many cosine cycles the run makes")
    lr_power: float = knob(1.0, "polynomial: the decay's power (1 = linear)")
    snr_gamma: float | None = knob(None, "Min-SNR weighting (Hang et al. 2023): each sample's "
                                         "loss × min(SNR, γ)/SNR (/(SNR+1) for v-prediction), "
                                         "so nearly clean timesteps count less; 5 is usual; "
                                         "empty = off", type=float)
    noise_offset: float = knob(0.0, "add this × one random number per channel to the noise "
                                    "(0.05-0.1), so the model can learn very dark or bright "
                                    "pictures; 0 = off")
    optimizer: str = knob("adamw", "adamw, or prodigy (finds its own step size: use "
                                   "learning_rate=1.0; `pip install prodigyopt`)",
                          choices=OPTIMIZERS)
    prodigy_beta3: float | None = knob(None, "Prodigy's β3 for its step-size estimate; empty = "
                                             "√β2", type=float)
    prodigy_decouple: bool = knob(True, "Prodigy: AdamW-style (decoupled) weight decay")
    prodigy_use_bias_correction: bool = knob(True, "Prodigy: Adam's bias correction (diffusers "
                                                   "recommends it)")
    prodigy_safeguard_warmup: bool = knob(True, "Prodigy: do not let warm-up inflate the step "
                                                "size estimate")
    gradient_accumulation_steps: int = knob(1, "steps whose gradients add up before one update: "
                                               "a larger batch without more memory")
    max_grad_norm: float = knob(1.0, "gradient clipping; guards against a bad step")
    adam_beta1: float = knob(0.9, "AdamW β1: momentum of the gradient average")
    adam_beta2: float = knob(0.999, "AdamW β2: momentum of the squared-gradient average")
    adam_weight_decay: float = knob(1e-2, "AdamW weight decay: pulls weights gently toward 0")
    adam_epsilon: float = knob(1e-8, "AdamW ε: keeps the update finite where gradients are ~0")
    step_mode: str = knob("auto", "one_pass: instance+class in one batch (fastest); two_pass: two "
                                  "backward passes before one update (less activation memory); "
                                  "auto: let dreamkit pick", choices=STEP_MODES)
    mixed_precision: str = knob("no", "fp16 on a T4, bf16 on A100/H100; 'no' on CPU. Trained "
                                      "weights stay fp32 either way", choices=MIXED_PRECISION)
    use_8bit_adam: bool = knob(False, "AdamW with 8-bit states (bitsandbytes): 1.7 GB instead "
                                      "of 6.9 GB for SD 1.5's UNet; falls back to torch AdamW "
                                      "with a notice if bitsandbytes does not work here")
    optimizer_in_backward: bool = knob(False, "update each weight as soon as its gradient is "
                                              "ready and free that gradient (SD 1.5: -3.4 GB); "
                                              "needs one_pass and no accumulation; with fp16 "
                                              "a check pass guards against overflow (1 GPU)")
    cache_latents: bool = knob(True, "encode photos and class images once, then keep the VAE "
                                     "off the GPU (saves its memory and time each step); exact: "
                                     "each step still draws a fresh latent sample")
    precompute_text_embeddings: bool = knob(False, "encode every training prompt once, then keep "
                                                   "the frozen text encoder off the GPU (not with "
                                                   "train_text_encoder)")
    text_encoder_use_attention_mask: bool = knob(False, "hide the padding after the prompt from "
                                                        "the text encoder (diffusers' flag); "
                                                        "SD 1.5 was trained without it")
    gradient_checkpointing: bool = knob(False, "recompute activations in backward: less memory, "
                                               "~30% slower")
    seed: int = knob(0, "one seed for noise, timesteps, data order and class images: same seed, "
                        "same run")

    # --- checkpoints (never lose a run) ---------------------------------------------------------
    checkpointing_steps: int = knob(250, "save a resumable checkpoint every N steps (0 = never); "
                                         "SD 1.5 full UNet: ~10 GB each with AdamW, so keep few")
    checkpoints_total_limit: int = knob(1, "how many checkpoints to keep (newest); 0 = all. 1, "
                                           "where diffusers keeps all: an SD 1.5 checkpoint is "
                                           "~5-10 GB and free Drive has 15 GB")
    keep_checkpoints: bool = knob(False, "keep the checkpoints after the final model is saved "
                                         "(to train on later); off: removed at a successful "
                                         "end, the model holds the same weights (Drive space)")
    resume: str = knob("", "'auto' (or 'latest'): continue from the newest complete checkpoint "
                           "in output_dir (start fresh if none); a checkpoint folder, or "
                           "diffusers' 'checkpoint-N'; empty: start fresh",
                       aliases=("resume_from_checkpoint",))

    # --- outputs and samples ------------------------------------------------------------------
    output_dir: str = knob("dreambooth-out", "run folder; it becomes a diffusers model folder "
                                             "(model_index.json, unet/, ...) with samples/, "
                                             "class_images/, config.json, history.json beside; "
                                             "put it on Drive on Colab")
    save_precision: str = knob("auto", "the final model's weights on disk: fp16 halves it "
                                       "(SD 1.5: 2.1 instead of 4.3 GB); auto: fp16 after fp16/"
                                       "bf16 training, fp32 after fp32 (the CPU path)",
                               choices=SAVE_PRECISIONS)
    sample_prompts: list = knob([], "prompts sampled during training; empty = the instance prompt "
                                    "and one in a new context", aliases=("validation_prompt",))
    sample_every: int = knob(0, "sample every N steps (0 = only at the end)",
                             aliases=("validation_steps",))
    num_sample_images: int = knob(2, "images per sample prompt, at fixed seeds; 0 = no sample "
                                     "grids (diffusers' script without a validation prompt)",
                                  aliases=("num_validation_images",))
    sample_steps: int = knob(25, "denoising steps for samples")
    guidance_scale: float = knob(7.5, "classifier-free guidance for samples and class images")
    report_to: str = knob("none", "also log losses, learning rate and sample grids to "
                                  "tensorboard (into output_dir/logs) or wandb; none: only "
                                  "history.json and loss.png", choices=TRACKERS)

    def __post_init__(self):
        self.validate()

    # --- derived values (every part reads these, so a setting means one thing everywhere) --
    @property
    def final_dtype(self) -> str:
        """What save_precision means for this run: 'fp16' or 'fp32'."""
        if self.save_precision != "auto":
            return self.save_precision
        return "fp16" if self.precision.mixed else "fp32"

    @property
    def precision(self) -> Precision:
        """What mixed_precision means for this run: dtypes, who scales the loss, autocast's
        cache (core/precision.py; the one place that decides it)."""
        return Precision.of(self)

    @property
    def prior_preservation(self) -> bool:
        """Whether the run trains on class images (DreamBooth §3.3). Validation guarantees
        prior_loss_weight > 0 when it is on."""
        return self.with_prior_preservation

    @property
    def resolved_concepts(self) -> list[Concept]:
        """Every subject of the run as a complete Concept (concepts.py): its photos, prompts
        and class images. One when `concepts` is empty: the settings above."""
        return resolve_concepts(self)

    @property
    def resolved_instance_prompt(self) -> str:
        return self.resolved_concepts[0].instance_prompt

    @property
    def resolved_class_prompt(self) -> str:
        return self.resolved_concepts[0].class_prompt

    @property
    def resolved_class_dir(self) -> str:
        return self.resolved_concepts[0].class_dir

    @property
    def resolved_sample_prompts(self) -> list[str]:
        if self.sample_prompts:
            return list(self.sample_prompts)
        out = []
        for c in self.resolved_concepts:
            out += [c.instance_prompt, c.instance_prompt + " on the beach"]
        return out

    # --- validation (core/validate.py: the rules in one place) -------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the first field that cannot work, its value and the fix."""
        validate(self)

    def check_ready(self) -> None:
        """validate(), and what training needs that a config being filled in may still lack
        (the photos, the class): ConfigError naming it."""
        check_ready(self)

    # --- saving and loading (core/config_files.py: the file and what can be wrong with it) ---
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def with_absolute_paths(self) -> "TrainConfig":
        """The same settings with every local folder as a full path (config_files.py)."""
        return with_absolute_paths(self)

    def save(self, path) -> Path:
        return save_config(self, path)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        return cls(**known_settings(data, cls))

    @classmethod
    def load(cls, path) -> "TrainConfig":
        return cls.from_dict(read_settings(path))

    def replace(self, **changes) -> "TrainConfig":
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def knob_help(name: str) -> str:
    """The one-line why of a TrainConfig field."""
    for f in dataclasses.fields(TrainConfig):
        if f.name == name:
            return f.metadata.get("why", "")
    raise KeyError(name)
