"""Tiny Stable Diffusion parts, built offline, for tests and the no-download demo.

Real weights cannot be downloaded everywhere (CI, classrooms), so tests build a miniature
Stable Diffusion from configs: a UNet2DConditionModel, an AutoencoderKL, a CLIPTextModel and a
CLIPTokenizer made from a vocab.json + merges.txt written here. It is saved in the ordinary
diffusers layout, so dreamkit loads it exactly the way it loads SD 1.5 from the hub.
"""

from __future__ import annotations

import random
from pathlib import Path

from .models.portable import make_portable
from .toy.tokenizer import write_clip_tokenizer_files

# diffusers, transformers: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["write_clip_tokenizer_files", "make_tiny_sd", "make_tiny_sdxl", "make_photos",
           "make_tiny_eval_models"]

def _tiny_vae(sample_size: int):
    """A two-block VAE: pictures twice the latent size."""
    from diffusers import AutoencoderKL
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), layers_per_block=1,
        norm_num_groups=32, sample_size=sample_size * 2)


def _tiny_tokenizer(folder: Path):
    """A CLIPTokenizer from a locally written vocabulary (the source files are removed; the
    pipeline saves its own copy)."""
    import shutil

    from transformers import CLIPTokenizer
    tok_dir = write_clip_tokenizer_files(Path(folder) / "_tokenizer_src")
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"),
                              model_max_length=77)
    shutil.rmtree(tok_dir)
    return tokenizer


def _tiny_clip_config(tokenizer, hidden: int, **extra):
    from transformers import CLIPTextConfig
    return CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=37,
                          num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          pad_token_id=tokenizer.pad_token_id, **extra)


def make_tiny_sd(folder, *, prediction_type: str = "epsilon", seed: int = 0,
                 sample_size: int = 16, cross_attention_dim: int = 32) -> Path:
    """Build a miniature SD 1.x pipeline from configs and save it in the diffusers layout.

    The VAE shrinks images 2× (two blocks), so `sample_size=16` latents mean 32×32 pictures.
    """
    import torch
    from diffusers import DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=cross_attention_dim,
        attention_head_dim=8, norm_num_groups=32)
    vae = _tiny_vae(sample_size)
    tokenizer = _tiny_tokenizer(folder)
    text_encoder = CLIPTextModel(_tiny_clip_config(tokenizer, cross_attention_dim))
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, clip_sample=False, steps_offset=1,
                              prediction_type=prediction_type)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   unet=unet, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder)
    make_portable(folder)  # as the Hub's models: the files older releases read too
    return folder


def make_tiny_sdxl(folder, *, seed: int = 0, sample_size: int = 16) -> Path:
    """A miniature SDXL pipeline (two text encoders, the size/crop "time ids"), saved in the
    diffusers layout; like make_tiny_sd, 32×32 pictures."""
    import torch
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    folder = Path(folder)
    torch.manual_seed(seed)
    width1, width2, time_dim = 32, 32, 8
    unet = UNet2DConditionModel(
        sample_size=sample_size, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
        cross_attention_dim=width1 + width2, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + width2, norm_num_groups=32)
    vae = _tiny_vae(sample_size)
    tokenizer = _tiny_tokenizer(folder)
    text_encoder = CLIPTextModel(_tiny_clip_config(tokenizer, width1))
    text_encoder_2 = CLIPTextModelWithProjection(_tiny_clip_config(tokenizer, width2,
                                                                   projection_dim=width2))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, steps_offset=1,
                                       beta_schedule="scaled_linear", num_train_timesteps=1000)
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder,
                                     text_encoder_2=text_encoder_2, tokenizer=tokenizer,
                                     tokenizer_2=tokenizer, unet=unet, scheduler=scheduler)
    pipe.save_pretrained(folder)
    return folder


def make_tiny_eval_models(folder, seed: int = 0) -> tuple[Path, Path]:
    """A tiny DINO-style ViT and a tiny CLIP (with tokenizer), random weights, saved offline in
    the transformers layout: stand-ins for facebook/dino-vits16 and openai/clip-vit-base-patch32
    in tests of the evaluation arithmetic. Returns (vit_dir, clip_dir)."""
    import torch
    from transformers import (
        CLIPConfig,
        CLIPModel,
        CLIPTextConfig,
        CLIPTokenizer,
        CLIPVisionConfig,
        ViTConfig,
        ViTModel,
    )

    folder = Path(folder)
    torch.manual_seed(seed)
    vit = ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=4, intermediate_size=37),
                   add_pooling_layer=False)
    vit.save_pretrained(folder / "tiny-dino")
    tok_dir = write_clip_tokenizer_files(folder / "tiny-clip")
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"),
                              model_max_length=77)
    clip = CLIPModel(CLIPConfig(
        text_config=CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=32,
                                   intermediate_size=37, num_hidden_layers=2,
                                   num_attention_heads=4, max_position_embeddings=77,
                                   bos_token_id=tokenizer.bos_token_id,
                                   eos_token_id=tokenizer.eos_token_id,
                                   pad_token_id=tokenizer.pad_token_id).to_dict(),
        vision_config=CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32,
                                       intermediate_size=37, num_hidden_layers=2,
                                       num_attention_heads=4).to_dict(),
        projection_dim=16))
    clip.save_pretrained(folder / "tiny-clip")
    tokenizer.save_pretrained(folder / "tiny-clip")
    return folder / "tiny-dino", folder / "tiny-clip"


def make_photos(folder, n: int = 4, size: int = 64, seed: int = 0, fmt: str = "png") -> list[Path]:
    """Synthetic 'photos' of one subject (a two-coloured disc) on varied backgrounds."""
    from PIL import Image, ImageDraw

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for i in range(n):
        bg = tuple(rng.randint(0, 255) for _ in range(3))
        img = Image.new("RGB", (size, size), bg)
        d = ImageDraw.Draw(img)
        r = rng.randint(size // 5, size // 3)
        cx, cy = rng.randint(r, size - r), rng.randint(r, size - r)
        d.pieslice([cx - r, cy - r, cx + r, cy + r], 90, 270, fill=(255, 0, 255))
        d.pieslice([cx - r, cy - r, cx + r, cy + r], 270, 90, fill=(0, 255, 255))
        path = folder / f"photo_{i:02d}.{fmt}"
        img.save(path)
        paths.append(path)
    return paths
