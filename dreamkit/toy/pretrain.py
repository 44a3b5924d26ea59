"""`dreamkit toy pretrain`: train the toy world's base model from scratch, on a CPU.

The result is an ordinary Stable Diffusion folder (tokenizer, CLIP text encoder, AutoencoderKL,
UNet2DConditionModel, scheduler), so every part of dreamkit loads it as it loads SD 1.5. Two
stages, as Stable Diffusion itself was built:

1. the VAE learns to squeeze 64×64 pictures into 16×16×4 latents and back;
2. the UNet and the text encoder learn, together, to denoise those latents given the caption
   (10% of captions are dropped, so classifier-free guidance works). An exponential moving
   average of the weights is what gets saved: it samples much more cleanly than the raw weights.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .tokenizer import write_clip_tokenizer_files
from .world import SIZE, pretraining_example, vae_example, vocabulary

# diffusers, tqdm, transformers: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["build_toy_parts", "render_dataset", "train_vae", "train_denoiser", "pretrain"]

MAX_TOKENS = 16  # toy prompts are short; 16 positions instead of 77 makes everything faster


def build_toy_parts(folder: Path, seed: int = 0):
    """Untrained toy-world parts: tokenizer, text encoder, VAE, UNet, noise scheduler."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(seed)
    tok_dir = write_clip_tokenizer_files(folder / "_tokenizer_src", words=vocabulary())
    tokenizer = CLIPTokenizer(str(tok_dir / "vocab.json"), str(tok_dir / "merges.txt"),
                              model_max_length=MAX_TOKENS)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=MAX_TOKENS,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        layers_per_block=1, norm_num_groups=8, sample_size=SIZE)
    unet = UNet2DConditionModel(
        sample_size=SIZE // 4, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, attention_head_dim=8, norm_num_groups=16)
    scheduler = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, clip_sample=False, steps_offset=1)
    return tokenizer, text_encoder, vae, unet, scheduler, tok_dir


def _stack(pics) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(p) for p in pics])).permute(0, 3, 1, 2).contiguous()


def render_dataset(n: int, seed: int = 0, progress: bool = True):
    """n pretraining pictures (uint8, N×3×64×64) and their captions."""
    from tqdm.auto import tqdm
    pairs = [pretraining_example(i, seed) for i in tqdm(range(n), desc="rendering the toy world",
                                                        disable=not progress)]
    return _stack(p for p, _ in pairs), [c for _, c in pairs]


def render_vae_dataset(n: int, seed: int = 0) -> torch.Tensor:
    return _stack(vae_example(i, seed) for i in range(n))


def _batches(n: int, batch: int, steps: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        yield torch.randint(0, n, (batch,), generator=g)


def train_vae(vae, images, steps: int, batch: int = 32, lr: float = 2e-3, seed: int = 0,
              progress: bool = True) -> list:
    from tqdm.auto import tqdm
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    losses = []
    vae.train()
    for idx in tqdm(_batches(len(images), batch, steps, seed), total=steps, desc="VAE",
                    disable=not progress):
        x = images[idx].float() / 127.5 - 1
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        # Reconstruction, a very light KL term, and a guide: latent channels 0-2 should be the
        # picture shrunk 4x. Colour then passes through the latent whatever its hue (without
        # it, a small VAE turns the subject's unseen magenta and cyan into a blue blob), and
        # the latents can be shown as a small picture.
        guide = F.mse_loss(post.mean[:, :3], F.avg_pool2d(x, 4))
        loss = F.mse_loss(rec, x) + 1e-6 * post.kl().mean() + guide
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    _pin_posterior(vae)
    vae.eval()
    return losses


@torch.no_grad()
def _pin_posterior(vae, logvar: float = -12.0) -> None:
    """Make the encoder nearly deterministic (std ≈ 0.0025), as SD's VAE effectively is.

    Training leaves a wide posterior (std ~0.4 against a latent spread of ~0.9); DreamBooth
    samples from it, and would train on latents much noisier than the ones the UNet learned.
    Only the log-variance half of quant_conv changes: means and the decoder stay as trained.
    """
    half = vae.quant_conv.out_channels // 2
    vae.quant_conv.weight[half:] = 0.0
    vae.quant_conv.bias[half:] = logvar


@torch.no_grad()
def encode_latents(vae, images, batch: int = 256) -> torch.Tensor:
    out = [vae.encode(images[i:i + batch].float() / 127.5 - 1).latent_dist.mean
           for i in range(0, len(images), batch)]
    return torch.cat(out)


def train_denoiser(unet, text_encoder, tokenizer, scheduler, latents, captions, steps: int,
                   batch: int = 64, lr: float = 1e-3, drop_caption: float = 0.1, seed: int = 0,
                   progress: bool = True, snapshot=None, snapshot_every: int = 0) -> list:
    """UNet + text encoder on (latent, caption) pairs; returns the losses. Leaves EMA weights.

    `snapshot()` is called every `snapshot_every` steps with the EMA weights in place (to save a
    model that can be looked at while the run goes on).
    """
    from diffusers.training_utils import EMAModel
    from tqdm.auto import tqdm

    params = list(unet.parameters()) + list(text_encoder.parameters())
    # No weight decay: it would shrink the embeddings of rare words towards one point.
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.03)
    ema = EMAModel(params, decay=0.9995, use_ema_warmup=True, inv_gamma=1.0, power=0.75)
    ids = tokenizer(captions + [""], padding="max_length", max_length=tokenizer.model_max_length,
                    truncation=True, return_tensors="pt").input_ids
    empty = ids[-1]
    g = torch.Generator().manual_seed(seed + 1)
    losses = []
    unet.train()
    text_encoder.train()
    for idx in tqdm(_batches(len(latents), batch, steps, seed), total=steps, desc="UNet + text",
                    disable=not progress):
        x0 = latents[idx]
        tok = ids[idx].clone()
        tok[torch.rand(len(idx), generator=g) < drop_caption] = empty
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(idx),), generator=g)
        pred = unet(scheduler.add_noise(x0, noise, t), t, text_encoder(tok)[0]).sample
        loss = F.mse_loss(pred, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        ema.step(params)
        losses.append(loss.item())
        if snapshot and snapshot_every and len(losses) % snapshot_every == 0 \
                and len(losses) < steps:
            ema.store(params)
            ema.copy_to(params)
            snapshot(len(losses))
            ema.restore(params)
    ema.copy_to(params)
    unet.eval()
    text_encoder.eval()
    return losses


def pretrain(out, seed: int = 0, n_images: int = 20000, vae_steps: int = 500,
             unet_steps: int = 4000, progress: bool = True, snapshot_every: int = 0) -> dict:
    """Train and save the toy base model in `out`; returns (and saves) a log with timings."""
    from diffusers import StableDiffusionPipeline

    out = Path(out)
    t0 = time.time()
    tokenizer, text_encoder, vae, unet, scheduler, tok_dir = build_toy_parts(out, seed)
    images, captions = render_dataset(n_images, seed, progress)
    vae_images = render_vae_dataset(max(n_images // 2, 1000), seed)
    t_render = time.time()
    vae_losses = train_vae(vae, vae_images, vae_steps, seed=seed, progress=progress)
    t_vae = time.time()
    latents = encode_latents(vae, images)
    # Scale latents to unit variance, as SD's 0.18215 does for its VAE.
    scale = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=scale)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   unet=unet, scheduler=scheduler, safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    unet_losses = train_denoiser(
        unet, text_encoder, tokenizer, scheduler, latents * scale, captions, unet_steps,
        seed=seed, progress=progress, snapshot_every=snapshot_every,
        snapshot=lambda step: pipe.save_pretrained(out / "_snapshot"))
    t_unet = time.time()
    pipe.save_pretrained(out)
    for f in tok_dir.iterdir():
        f.unlink()
    tok_dir.rmdir()

    def tail(xs):
        return round(float(np.mean(xs[-50:])), 5) if xs else None
    log = {"seed": seed, "n_images": n_images, "vae_steps": vae_steps, "unet_steps": unet_steps,
           "seconds": {"render": round(t_render - t0, 1), "vae": round(t_vae - t_render, 1),
                       "unet_and_text": round(t_unet - t_vae, 1), "total": round(t_unet - t0, 1)},
           "final_loss": {"vae": tail(vae_losses), "unet": tail(unet_losses)},
           "latent_scaling_factor": scale, "torch": torch.__version__,
           "machine": f"{platform.machine()}, {torch.get_num_threads()} threads"}
    (out / "pretrain_log.json").write_text(json.dumps(log, indent=1) + "\n")
    return log
