"""The optimizer, and two ways to make it cost less memory.

AdamW keeps two numbers per trained weight (the running mean and variance of its gradient):
for SD 1.5's UNet, 860 M weights × 2 × 4 bytes = 6.9 GB, more than the weights themselves.

- **8-bit AdamW** (bitsandbytes) stores those two in one byte each, block-quantised: 1.7 GB.
  If bitsandbytes is missing or broken (no matching CUDA build), dreamkit says so in one line
  and uses torch's AdamW.
- **The step inside backward** (`optimizer_in_backward`): normally every weight's gradient
  (3.4 GB in fp32 for SD 1.5) stays alive until the optimizer step after backward. With a hook
  that fires as soon as one parameter's gradient is complete, that parameter is updated and its
  gradient freed at once, so only a few gradients exist at any moment. The price: no gradient
  accumulation, no global gradient-norm clipping (each parameter is clipped alone), and one
  backward pass per step (two passes would need the gradient of both halves first).
- **fp16 with the step inside backward** (`LossScale`): fp16 gradients overflow unless the loss
  is scaled up, and an overflowed step must be skipped whole. The usual GradScaler checks every
  gradient after backward, but here the first weights are updated before the last gradients
  exist. So, as LOMO does, each step runs backward twice on the same graph: a check pass whose
  hooks only look for inf/NaN and free each gradient, then (if all were finite) the real pass
  that unscales and updates. No weight is ever updated on an overflowed step; the price is one
  more backward pass (~+75 % FLOPs with gradient checkpointing), no memory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ..core.callbacks import warn
from ..core.env import load_bnb
from ..core.errors import ConfigError
from ..models.lora import TEXT_ENCODER_TARGETS, add_lora_as_configured

# bitsandbytes, diffusers: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["make_optimizer", "InBackwardOptimizer", "LossScale", "Trainer",
           "prepare_trainables"]


def _adamw(params_or_groups, config, bnb=None):
    """AdamW with config's settings: bitsandbytes' 8-bit one when `bnb` is given."""
    kw = dict(lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
              weight_decay=config.adam_weight_decay, eps=config.adam_epsilon)
    if bnb is not None:
        return bnb.optim.AdamW8bit(params_or_groups, **kw)
    return torch.optim.AdamW(params_or_groups, **kw, fused=_can_fuse(params_or_groups))


def _prodigy(groups, config, report=warn):
    """Prodigy (Mishchenko & Defazio 2023): Adam whose step size it estimates itself, as a
    multiple of learning_rate (so 1.0 is the usual learning_rate)."""
    try:
        from prodigyopt import Prodigy
    except ImportError:
        raise ConfigError("optimizer", "prodigy", "needs the prodigyopt package: pip install "
                          "prodigyopt, or use optimizer='adamw'") from None
    if config.learning_rate < 0.1:
        report(f"optimizer='prodigy' with learning_rate={config.learning_rate:g}: Prodigy "
               f"scales its own estimate by learning_rate, so 1.0 is usual; this run learns "
               f"about {1 / config.learning_rate:.0f}× slower")
    return Prodigy(groups, lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
                   beta3=config.prodigy_beta3, weight_decay=config.adam_weight_decay,
                   eps=config.adam_epsilon, decouple=config.prodigy_decouple,
                   use_bias_correction=config.prodigy_use_bias_correction,
                   safeguard_warmup=config.prodigy_safeguard_warmup)


def _can_fuse(params_or_groups) -> bool | None:
    """torch's fused AdamW (one kernel over every parameter) where it runs: the same update
    as the per-parameter loop (to ~1e-7) in a fifth of the time on the CPU (toy model: 4 ms
    instead of 20 ms a step), and without foreach's temporary copies on a GPU. Not on the
    meta device, where the planner counts the step (None: torch's default)."""
    params = [p for g in params_or_groups for p in (g["params"] if isinstance(g, dict) else [g])]
    ok = all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float16,
                                                               torch.bfloat16) for p in params)
    return True if params and ok else None


@dataclass
class LossScale:
    """fp16 loss scaling as torch.amp.GradScaler does it (same defaults): start at 2**16, halve
    on an overflow (and skip that step), double after 2000 steps in a row without one."""
    scale: float = 2.0 ** 16
    growth_tracker: int = 0
    growth_interval: int = 2000
    skipped: int = 0  # steps skipped for an overflow, in this run

    def update(self, found_inf: bool) -> None:
        if found_inf:
            self.scale, self.growth_tracker, self.skipped = self.scale * 0.5, 0, self.skipped + 1
        else:
            self.growth_tracker += 1
            if self.growth_tracker == self.growth_interval:
                self.scale, self.growth_tracker = self.scale * 2.0, 0


class InBackwardOptimizer(torch.optim.Optimizer):
    """One small optimizer per parameter, stepped by a hook the moment its gradient is ready.

    Looks like one optimizer to the training loop (state_dict, param_groups for the LR
    scheduler, step and zero_grad become no-ops), so checkpoints and schedules work unchanged.
    With `loss_scale` (fp16), call `backward(loss)` instead of `loss.backward()`.
    """

    def __init__(self, groups, config, bnb=None, loss_scale: LossScale | None = None):
        self.max_norm = config.max_grad_norm
        self.loss_scale = loss_scale
        self._checking, self._found_inf = False, None
        self.per_param, self.group_index = {}, {}
        for gi, group in enumerate(groups):
            settings = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                self.group_index[p] = gi
                self.per_param[p] = _adamw([{**settings, "params": [p]}], config, bnb)
                p.register_post_accumulate_grad_hook(self._hook)
        super().__init__([dict(g) for g in groups], {"lr": config.learning_rate})

    def _hook(self, p):
        if p.grad is None:
            return
        if self._checking:  # the check pass: note an overflow, update nothing, free at once
            bad = ~torch.isfinite(p.grad).all()
            self._found_inf = bad if self._found_inf is None else self._found_inf | bad
            p.grad = None
            return
        if self.loss_scale is not None:  # unscale (a power of 2: exact)
            p.grad.mul_(1.0 / self.loss_scale.scale)
        # per-parameter clipping: the global norm is unknown until every gradient exists
        torch.nn.utils.clip_grad_norm_([p], self.max_norm)
        opt = self.per_param[p]
        opt.param_groups[0]["lr"] = self.param_groups[self.group_index[p]]["lr"]  # the schedule
        opt.step()
        p.grad = None  # free it now: this is the memory saved

    def backward(self, loss: torch.Tensor) -> None:
        """loss.backward(), and with loss scaling the check pass first (see the module's
        docstring); an overflow skips the step whole and halves the scale."""
        if self.loss_scale is None:
            loss.backward()
            return
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            raise NotImplementedError("fp16 with optimizer_in_backward runs on one GPU: use "
                                      "bf16, or turn optimizer_in_backward off")
        scaled = loss.float() * self.loss_scale.scale
        self._checking, self._found_inf = True, None
        try:
            scaled.backward(retain_graph=True)  # the same graph serves the real pass
        finally:
            self._checking = False
        found = self._found_inf
        overflow = found is not None and not found.is_meta and bool(found)  # meta: planning
        if not overflow:
            scaled.backward()
        self.loss_scale.update(overflow)

    def step(self, closure=None):  # the hooks did it
        return None

    def zero_grad(self, set_to_none: bool = True):
        return None

    def state_dict(self):
        return {"per_param": [opt.state_dict() for opt in self.per_param.values()],
                "param_groups": [{k: v for k, v in g.items() if k != "params"}
                                 for g in self.param_groups],
                **({"loss_scale": dataclasses.asdict(self.loss_scale)} if self.loss_scale
                   else {})}

    def load_state_dict(self, state):
        for opt, s in zip(self.per_param.values(), state["per_param"]):
            opt.load_state_dict(s)
        for g, s in zip(self.param_groups, state["param_groups"]):
            g.update(s)
        if self.loss_scale is not None and "loss_scale" in state:  # exact resume
            self.loss_scale = LossScale(**state["loss_scale"])


def make_optimizer(groups, config, report=warn):
    """AdamW (8-bit when config.use_8bit_adam and bitsandbytes works), stepped after backward
    or, with config.optimizer_in_backward, inside it."""
    if config.optimizer == "prodigy":
        return _prodigy(groups, config, report)
    bnb = load_bnb(report) if config.use_8bit_adam else None  # checked once
    if config.optimizer_in_backward:
        scale = LossScale() if config.precision.dreamkit_scales_loss else None
        return InBackwardOptimizer(groups, config, bnb, loss_scale=scale)
    return _adamw(groups, config, bnb)


@dataclass
class Trainer:
    """What trains and what updates it: the UNet (and text encoder), wrapped by accelerate
    (DDP under torchrun), their parameters, the optimizer and the learning-rate schedule."""
    unet: torch.nn.Module
    text_encoder: torch.nn.Module | None  # None when it stays frozen
    params: list
    optimizer: torch.optim.Optimizer
    lr_scheduler: object
    text_encoder_steps: int = 0  # train it only for the first N steps (0 = all)
    backward: object = None  # loss -> gradients: accelerate's, or the fp16 in-backward one

    def models(self) -> dict:
        """{"unet": ..., "text_encoder": ...}: the parts a checkpoint and DDP's no_sync cover."""
        return {"unet": self.unet,
                **({"text_encoder": self.text_encoder} if self.text_encoder is not None else {})}

    def text_encoder_trains(self, step: int) -> bool:
        return self.text_encoder is not None and (not self.text_encoder_steps
                                                  or step < self.text_encoder_steps)


def prepare_trainables(config, comps, accelerator, loader, dtype, report=warn):
    """Mark what trains (the whole UNet, or LoRA adapters; the text encoder with
    train_text_encoder), make the optimizer and schedule, and hand them to accelerate.
    Returns (Trainer, the prepared loader)."""
    from diffusers.optimization import (
        get_scheduler,  # diffusers: heavy, imported when training
    )

    unet, te = comps.unet, comps.text_encoder
    if config.use_lora:  # the frozen UNet may be half precision; the adapters are fp32
        unet.to(accelerator.device, dtype)
        unet_params = add_lora_as_configured(unet, config)
    else:
        unet_params = list(unet.requires_grad_(True).parameters())
    unet.train()
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    lr = config.learning_rate
    if config.scale_lr:  # as diffusers' --scale_lr: the effective batch grows, so does the step
        lr *= (config.train_batch_size * config.gradient_accumulation_steps
               * accelerator.num_processes)
    groups = [{"params": unet_params, "lr": lr}]
    if config.train_text_encoder:
        te_params = add_lora_as_configured(te, config, TEXT_ENCODER_TARGETS) if config.use_lora \
            else list(te.requires_grad_(True).parameters())
        te.train()
        groups.append({"params": te_params, "lr": config.text_encoder_lr or lr})
    optimizer = make_optimizer(groups, config.replace(learning_rate=lr), report=report)
    lr_scheduler = get_scheduler(
        config.lr_scheduler, optimizer=optimizer,
        num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=config.max_train_steps * accelerator.num_processes,
        num_cycles=config.lr_num_cycles, power=config.lr_power)
    if config.train_text_encoder:
        unet, te, optimizer, loader, lr_scheduler = accelerator.prepare(
            unet, te, optimizer, loader, lr_scheduler)
        comps.text_encoder = te
    else:  # DDP refuses a model with nothing to train
        unet, optimizer, loader, lr_scheduler = accelerator.prepare(unet, optimizer, loader,
                                                                    lr_scheduler)
        te = None
    params = [p for g in groups for p in g["params"]]
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it
    backward = inner.backward if config.precision.dreamkit_scales_loss else accelerator.backward
    return Trainer(unet, te, params, optimizer, lr_scheduler, config.text_encoder_steps,
                   backward), loader
