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
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import checks, prompts
from .concepts import Concept, class_jobs, resolve_concepts
from .errors import ConfigError
from .precision import Precision

__all__ = ["TrainConfig", "knob_help", "prior_weight_error", "STEP_MODES", "LR_SCHEDULERS",
           "MIXED_PRECISION", "DEFAULT_PRIOR_LOSS_WEIGHT"]

STEP_MODES = ("auto", "one_pass", "two_pass")
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts",
                 "polynomial")
MIXED_PRECISION = ("no", "fp16", "bf16")
SAVE_PRECISIONS = ("auto", "fp16", "fp32")
DEFAULT_PRIOR_LOSS_WEIGHT = 1.0


def prior_weight_error(weight) -> ConfigError:
    """The one prior-preservation rule, as CLI, widgets and Python say it: a weight other than
    the default without the switch would be silently ignored, so it is refused."""
    return ConfigError("prior_loss_weight", weight,
                       "has no effect while with_prior_preservation is off: turn prior "
                       "preservation on (--with_prior_preservation), or leave "
                       f"prior_loss_weight at {DEFAULT_PRIOR_LOSS_WEIGHT}")


def _number(v) -> bool:
    """A finite int or float (True/False and NaN/inf are not settings)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


MAX_STEPS = 1_000_000  # a bound for typos (an extra 0 or three); real runs use 400-2000


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
    lora_target_modules: list = knob([], "layers that get adapters; empty = the attention "
                                         "projections (to_q, to_k, to_v, to_out.0)")
    scale_lr: bool = knob(False, "multiply learning_rate by batch size × accumulation × "
                                 "processes, as diffusers' --scale_lr does")
    lr_scheduler: str = knob("constant", "how the learning rate changes over the run",
                             choices=LR_SCHEDULERS)
    lr_warmup_steps: int = knob(0, "steps to ramp the learning rate up from 0")
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
    num_sample_images: int = knob(2, "images per sample prompt, at fixed seeds",
                                  aliases=("num_validation_images",))
    sample_steps: int = knob(25, "denoising steps for samples")
    guidance_scale: float = knob(7.5, "classifier-free guidance for samples and class images")

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

    # --- validation ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the first field that cannot work, its value and the fix."""
        def need(ok: bool, name: str, fix: str):
            if not ok:
                raise ConfigError(name, getattr(self, name), fix)

        self._check_types(need)

        need(isinstance(self.pretrained_model_name_or_path, str)
             and self.pretrained_model_name_or_path.strip() != "",
             "pretrained_model_name_or_path", "give a hub id such as "
             "'stable-diffusion-v1-5/stable-diffusion-v1-5' or a local diffusers folder")
        ident = self.identifier
        need(isinstance(ident, str) and ident.strip() != "" and ident == ident.strip()
             and " " not in ident, "identifier",
             "use one rare word without spaces, e.g. 'zshq' "
             "(`dreamkit check-token` suggests more)")
        for name in ("resolution", "max_train_steps", "train_batch_size",
                     "gradient_accumulation_steps", "num_sample_images", "sample_steps",
                     "sample_batch_size", "class_inference_steps"):
            checks.whole(name, getattr(self, name), 1)
        need(self.max_train_steps <= MAX_STEPS, "max_train_steps",
             f"more than {MAX_STEPS:,} steps is a typo, not a DreamBooth run (400-2000 is usual)")
        checks.prompt_list("class_prompt_variants", self.class_prompt_variants)
        for name in ("instance_prompt", "class_prompt", "class_prompt_variants"):
            texts = getattr(self, name)  # templates checked as they are typed
            for text in texts if isinstance(texts, list) else [texts]:
                if isinstance(text, str) and text.strip():
                    prompts.fill_template(text, ident, self.class_noun or "x", setting=name)
        need(self.resolution % 8 == 0, "resolution",
             f"must be a multiple of 8 (the VAE shrinks images 8×); try "
             f"{max(8, self.resolution // 8 * 8)} or {self.resolution // 8 * 8 + 8}")
        for name in ("num_class_images", "lr_warmup_steps", "sample_every",
                     "text_encoder_steps", "checkpointing_steps", "checkpoints_total_limit"):
            checks.whole(name, getattr(self, name), 0)
        checks.seed("seed", self.seed)
        for name in ("learning_rate", "max_grad_norm", "adam_epsilon"):
            v = getattr(self, name)
            need(_number(v) and v > 0, name, "must be a finite number above 0")
        need(self.text_encoder_lr is None or (isinstance(self.text_encoder_lr, (int, float))
                                              and self.text_encoder_lr > 0),
             "text_encoder_lr", "must be a number above 0, or empty to use learning_rate")
        need(isinstance(self.lora_rank, int) and not isinstance(self.lora_rank, bool)
             and self.lora_rank > 0, "lora_rank", "must be a whole number above 0 (4-32 is usual)")
        need(self.lora_alpha is None or (isinstance(self.lora_alpha, (int, float))
                                         and self.lora_alpha > 0),
             "lora_alpha", "must be a number above 0, or empty to use lora_rank")
        need(isinstance(self.lora_target_modules, list)
             and all(isinstance(m, str) and m for m in self.lora_target_modules),
             "lora_target_modules", "give a list of layer names such as ['to_q', 'to_v'], or "
             "an empty list for the default")
        need(isinstance(self.resume, str), "resume",
             "use 'auto', a checkpoint folder, or an empty string")
        need(_number(self.prior_loss_weight) and self.prior_loss_weight >= 0,
             "prior_loss_weight", "must be 0 or more (0.1-1.0 is usual)")
        if self.with_prior_preservation:
            need(self.prior_loss_weight > 0, "prior_loss_weight", "is 0 while "
                 "with_prior_preservation is on: give a weight above 0 (0.1-1.0 is usual), or "
                 "turn with_prior_preservation off")
        elif self.prior_loss_weight != DEFAULT_PRIOR_LOSS_WEIGHT:
            raise prior_weight_error(self.prior_loss_weight)
        need(self.adam_weight_decay >= 0, "adam_weight_decay", "must be 0 or more")
        need(0 <= self.adam_beta1 < 1, "adam_beta1", "must be in [0, 1)")
        need(0 <= self.adam_beta2 < 1, "adam_beta2", "must be in [0, 1)")
        need(self.guidance_scale >= 0, "guidance_scale", "must be 0 or more (7.5 is usual)")
        for name, choices in (("lr_scheduler", LR_SCHEDULERS), ("step_mode", STEP_MODES),
                              ("mixed_precision", MIXED_PRECISION),
                              ("save_precision", SAVE_PRECISIONS)):
            need(getattr(self, name) in choices, name, f"choose one of {', '.join(choices)}")
        checks.prompt_list("sample_prompts", self.sample_prompts)
        self._check_combinations(need)

    def _check_types(self, need) -> None:
        """A switch must be true or false and text must be text (a config file may say
        "false" in quotes, which Python would take as true)."""
        for f in dataclasses.fields(self):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            v = getattr(self, f.name)
            if isinstance(default, bool):
                need(isinstance(v, bool), f.name, "must be true or false (without quotes in a "
                     "config file)")
            elif isinstance(default, str) and f.metadata.get("type") is None:
                need(isinstance(v, str), f.name, "must be text")
            elif isinstance(default, list):
                need(isinstance(v, list), f.name, "must be a list")

    def _check_combinations(self, need) -> None:
        """Settings that are fine alone but not together."""
        if self.optimizer_in_backward:
            need(self.step_mode != "two_pass", "step_mode", "optimizer_in_backward updates "
                 "weights during backward, so both halves must be in one pass: use one_pass or "
                 "auto, or turn optimizer_in_backward off")
            need(self.gradient_accumulation_steps == 1, "gradient_accumulation_steps",
                 "optimizer_in_backward cannot add up gradients over steps: use 1")
        if self.concepts:
            self.resolved_concepts  # each concept's keys and types, named by index
            own = [isinstance(c, dict) and bool({"instance_dir", "instance_data_dir"} & set(c))
                   for c in self.concepts]
            need(not str(self.instance_dir).strip() or not all(own), "instance_dir",
                 "is not used: every entry of concepts has its own instance_dir; add this "
                 "folder to concepts as one more subject, or leave instance_dir empty")
        if self.with_prior_preservation and not self.concepts:
            need(self.num_class_images > 0, "num_class_images",
                 "prior preservation needs class images: use 100-200, or turn "
                 "with_prior_preservation off")

    def check_ready(self) -> None:
        """Raise ConfigError if something training needs is still unset.

        Separate from `validate` so that a config being filled in (a widget panel, a CLI
        default) can exist before the photos and the class are known.
        """
        self.validate()
        if self.concepts:
            concepts = self.resolved_concepts
            for i, c in enumerate(concepts):
                if not c.instance_dir.strip():
                    raise ConfigError(f"concepts[{i}].instance_dir", c.instance_dir,
                                      "give the folder with this subject's photos")
            for d, prompt, num in class_jobs(concepts, self.with_prior_preservation):
                if num <= 0:
                    raise ConfigError("num_class_images", num, f"prior preservation needs "
                                      f"class images of {prompt[0]!r}: use 100-200")
            self._check_folders()
            return
        if not str(self.instance_dir).strip():
            raise ConfigError("instance_dir", self.instance_dir,
                              "give the folder with 3-20 photos of your subject")
        self._check_folders()
        if not self.instance_prompt.strip() and not self.class_noun.strip():
            raise ConfigError("class_noun", self.class_noun,
                              "say what the subject is ('dog', 'person', 'backpack') so the "
                              "prompt 'a photo of zshq dog' can be made, or give instance_prompt")
        if self.with_prior_preservation and not (self.class_prompt.strip()
                                                 or self.class_noun.strip()):
            raise ConfigError("class_prompt", self.class_prompt,
                              "prior preservation needs a class prompt such as 'a photo of a "
                              "dog': set class_prompt or class_noun, or turn "
                              "with_prior_preservation off")
        # Templates: an unknown {field} or a {class} without class_noun fails here, not later.
        self.resolved_instance_prompt
        if self.with_prior_preservation:
            self.resolved_class_prompt

    def _check_folders(self) -> None:
        """Inputs are read-only: no output or class folder that is, is inside, or holds a
        photo folder or a local base model (samples and class images would land among the
        photos, and the next run would train on them)."""
        inputs = {f"concepts[{i}].instance_dir" if self.concepts else "instance_dir":
                  c.instance_dir for i, c in enumerate(self.resolved_concepts)}
        model = Path(self.pretrained_model_name_or_path).expanduser()
        if (model / "model_index.json").is_file():  # a local model folder
            inputs["pretrained_model_name_or_path"] = str(model)
        outputs = {"output_dir": self.output_dir,
                   **{"class_dir": c.class_dir for c in self.resolved_concepts}}
        for out_name, out in outputs.items():
            checks.not_inside(out_name, out, inputs)

    # --- saving and loading -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json() + "\n")
        tmp.replace(path)  # atomic: a crash never leaves half a config
        return path

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(unknown[0], data[unknown[0]],
                              "is not a TrainConfig setting; check the spelling (see "
                              "`dreamkit train --help`)")
        return cls(**data)

    @classmethod
    def load(cls, path) -> "TrainConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError("config", str(path), "no such file; give the path of a saved "
                              "config.json") from None
        except IsADirectoryError:
            raise ConfigError("config", str(path), "is a folder; give its config.json") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError("config", str(path), f"cannot be read ({e}); give a saved "
                              f"config.json") from None
        except json.JSONDecodeError as e:
            raise ConfigError("config", str(path), f"is not valid JSON ({e.msg}, line "
                              f"{e.lineno}); fix or recreate it") from None
        if not isinstance(data, dict):
            raise ConfigError("config", str(path), "must hold a JSON object of settings")
        return cls.from_dict(data)

    def replace(self, **changes) -> "TrainConfig":
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def knob_help(name: str) -> str:
    """The one-line why of a TrainConfig field."""
    for f in dataclasses.fields(TrainConfig):
        if f.name == name:
            return f.metadata.get("why", "")
    raise KeyError(name)
