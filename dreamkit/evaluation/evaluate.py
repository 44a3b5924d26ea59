"""Measuring what DreamBooth promises, as the paper does (Ruiz et al. 2023, §4.1 and §4.3).

Four numbers, under one set of names for every scorer:

    subject_fidelity  does the subject come out?    DINO: mean pairwise cosine between the
                                                    DINO (ViT-S/16) embeddings of generated and
                                                    real subject pictures; CLIP-I the same with
                                                    CLIP image embeddings
    prompt_fidelity   does the prompt still steer?  CLIP-T: mean cosine between each prompt's
                                                    CLIP text embedding (the identifier taken
                                                    out: CLIP has no meaning for it) and the
                                                    pictures made from it
    class_drift       did "a dog" become your dog?  PRES: DINO similarity between class-prompt
                                                    samples and the real subject pictures
    class_diversity   do class samples still vary?  1 - mean pairwise DINO cosine among class
                                                    samples (the paper uses LPIPS; DINO keeps
                                                    to one model)

`ModelScorer` computes them with transformers models (ids configurable; any folder in their
layout works offline). The toy world's `ToyScorer` (toy/scorer.py) returns the same keys from
its exact oracle. `evaluate_pipeline` draws the pictures at fixed seeds, with its own random
generators, so scoring during training leaves the training itself unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..core.env import device as env_device
from ..core.errors import DreamkitError, ModelError
from ..core.prompts import evaluation_prompts
from ..inputs.photos import fit_image, to_tensor
from ..models.loading import quiet_loading
from ..models.source import offline_if_hub_unreachable
from ..outputs.sample import generate_many

# transformers: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["ModelScorer", "Samples", "draw_samples", "evaluate_pipeline", "mean_pairwise_cosine",
           "self_similarity", "strip_identifier", "METRICS", "DINO_ID", "CLIP_ID"]

DINO_ID = "facebook/dino-vits16"
CLIP_ID = "openai/clip-vit-base-patch32"
METRICS = ("subject_fidelity", "prompt_fidelity", "class_drift", "class_diversity")
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
_CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1)


def mean_pairwise_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine similarity over all pairs (a_i, b_j): the paper's DINO and CLIP-I."""
    return float((_unit(a) @ _unit(b).T).mean())


def self_similarity(a: torch.Tensor) -> float:
    """Mean cosine over pairs i != j of one set (1.0 = all alike)."""
    n = a.shape[0]
    if n < 2:
        return 1.0
    sim = _unit(a) @ _unit(a).T
    return float((sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))


def strip_identifier(prompt: str, identifier: str) -> str:
    """'a photo of zshq dog' -> 'a photo of dog' (for CLIP-T)."""
    return " ".join(w for w in prompt.split() if w != identifier)


@dataclass
class Samples:
    """What a scorer looks at: pictures per prompt, class pictures, the real photos."""
    identifier: str
    subject: dict  # prompt -> [PIL images]
    klass: list
    real: list = field(default_factory=list)
    steps: dict = field(default_factory=dict)  # how they were made (seed, steps, guidance)


def _pixels(images, size: int, mean_std) -> torch.Tensor:
    """Resize the short side, centre-crop, normalise: the models' own preprocessing."""
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in mean_std)
    return torch.stack([(to_tensor(fit_image(im.convert("RGB"), size)) + 1) / 2 for im in images]
                       ).sub(mean).div(std)


class ModelScorer:
    """DINO, CLIP-I, CLIP-T, PRES and diversity from pretrained models (loaded on first use).

    A scorer has `score(Samples)`, the prompts it asks for (`prompts_for`: here the paper's),
    the class prompt it measures drift on, whether it needs the real photos, and fixed
    `sampling` settings (None: the run's own). toy/scorer.py's ToyScorer is the other one.
    """

    needs_real_images = True
    sampling = None

    def prompts_for(self, identifier: str, class_noun: str, n: int | None = None) -> list[str]:
        return evaluation_prompts(identifier, class_noun, n)

    def class_prompt_for(self, class_prompt_of_run: str) -> str:
        return class_prompt_of_run

    def __init__(self, dino: str = DINO_ID, clip: str = CLIP_ID, device=None, batch: int = 16):
        self.dino_id, self.clip_id, self.batch = dino, clip, batch
        self.device = device or env_device()
        self._dino = self._clip = self._tok = None

    def _load(self):
        from transformers import (  # heavy: on first use
            CLIPModel,
            CLIPTokenizer,
            ViTModel,
        )

        if self._dino is None:
            quiet_loading()
            for name in (self.dino_id, self.clip_id):
                offline_if_hub_unreachable(name)
            try:
                self._dino = ViTModel.from_pretrained(self.dino_id, add_pooling_layer=False
                                                      ).to(self.device).eval()
                self._clip = CLIPModel.from_pretrained(self.clip_id).to(self.device).eval()
                self._tok = CLIPTokenizer.from_pretrained(self.clip_id)
            except (OSError, ValueError) as e:
                raise ModelError(f"evaluation models dino={self.dino_id!r}, clip="
                                 f"{self.clip_id!r} could not be loaded ({str(e).splitlines()[0]});"
                                 f" give local folders or check the ids") from None

    @torch.no_grad()
    def dino(self, images) -> torch.Tensor:
        self._load()
        size = self._dino.config.image_size
        out = [self._dino(pixel_values=_pixels(images[i:i + self.batch], size, _IMAGENET)
                          .to(self.device)).last_hidden_state[:, 0]
               for i in range(0, len(images), self.batch)]
        return torch.cat(out).cpu()  # the CLS token, as the paper uses

    @torch.no_grad()
    def clip_images(self, images) -> torch.Tensor:
        self._load()
        size = self._clip.config.vision_config.image_size
        out = [_features(self._clip.get_image_features(
                   pixel_values=_pixels(images[i:i + self.batch], size, _CLIP).to(self.device)))
               for i in range(0, len(images), self.batch)]
        return torch.cat(out).cpu()

    @torch.no_grad()
    def clip_texts(self, texts) -> torch.Tensor:
        self._load()
        ids = self._tok(list(texts), padding=True, truncation=True, return_tensors="pt")
        return _features(self._clip.get_text_features(**ids.to(self.device))).cpu()

    def score(self, s: Samples) -> dict:
        if not s.real:
            raise DreamkitError("evaluation needs the real photos of the subject (Samples.real)")
        generated = [im for ims in s.subject.values() for im in ims]
        real_dino = self.dino(s.real)
        class_dino = self.dino(s.klass)
        texts = [strip_identifier(p, s.identifier) for p in s.subject]
        text = self.clip_texts(texts)
        clip_t = [float((_unit(self.clip_images(ims)) @ _unit(text[k:k + 1]).T).mean())
                  for k, ims in enumerate(s.subject.values())]
        return {"subject_fidelity": round(mean_pairwise_cosine(self.dino(generated),
                                                               real_dino), 4),
                "clip_i": round(mean_pairwise_cosine(self.clip_images(generated),
                                                     self.clip_images(s.real)), 4),
                "prompt_fidelity": round(sum(clip_t) / len(clip_t), 4),
                "class_drift": round(mean_pairwise_cosine(class_dino, real_dino), 4),
                "class_diversity": round(1 - self_similarity(class_dino), 4),
                "real_dino": round(self_similarity(real_dino), 4),  # the ceiling (paper: 0.774)
                "metric_names": {"subject_fidelity": "DINO", "prompt_fidelity": "CLIP-T",
                                 "class_drift": "PRES (DINO)", "class_diversity": "1 - DINO"}}


def _features(out) -> torch.Tensor:
    # transformers 5 may return a model output instead of a bare tensor
    return out if isinstance(out, torch.Tensor) else out.pooler_output


@torch.no_grad()
def draw_samples(pipe, prompts, class_prompt: str, identifier: str, real_images=(),
                 per_prompt: int = 2, n_class: int = 8, seed: int = 1000,
                 num_inference_steps: int = 25, guidance_scale: float = 7.5,
                 resolution: int | None = None) -> Samples:
    """The pictures a scorer looks at: `per_prompt` of each prompt at seeds seed, seed + 1,
    ..., and `n_class` of the class prompt at seeds seed + 5000, seed + 5001, ...

    Every picture has its own CPU generator, and nothing here draws from the global random
    state, so calling this in the middle of training does not change the training.
    """
    pipe.set_progress_bar_config(disable=True)
    kw = dict(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
              height=resolution, width=resolution)
    wanted = [(p, seed + k) for p in prompts for k in range(per_prompt)] + \
        [(class_prompt, seed + 5000 + k) for k in range(n_class)]
    drawn = generate_many(pipe, wanted, at_least=max(per_prompt, n_class), **kw)
    subject = {p: drawn[i * per_prompt:(i + 1) * per_prompt] for i, p in enumerate(prompts)}
    klass = drawn[len(prompts) * per_prompt:]
    return Samples(identifier, subject, klass, list(real_images), {"seed": seed, **kw})


@torch.no_grad()
def evaluate_pipeline(pipe, scorer, prompts, class_prompt: str, identifier: str,
                      real_images=(), per_prompt: int = 2, n_class: int = 8, seed: int = 1000,
                      num_inference_steps: int = 25, guidance_scale: float = 7.5,
                      resolution: int | None = None) -> dict:
    """Draw pictures for `prompts` and `class_prompt` at fixed seeds (draw_samples); score
    them with `scorer`."""
    return scorer.score(draw_samples(pipe, prompts, class_prompt, identifier, real_images,
                                     per_prompt, n_class, seed, num_inference_steps,
                                     guidance_scale, resolution))
