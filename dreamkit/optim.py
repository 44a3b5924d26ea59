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
"""

from __future__ import annotations

import torch

__all__ = ["make_optimizer", "load_bnb", "InBackwardOptimizer"]


def load_bnb(report=print):
    """bitsandbytes if it imports and runs a tiny 8-bit step here; else None, said in one line."""
    try:
        import bitsandbytes as bnb
        p = torch.nn.Parameter(torch.ones(64, 64, device="cuda" if torch.cuda.is_available()
                                          else "cpu"))
        opt = bnb.optim.AdamW8bit([p], lr=1e-3)
        p.grad = torch.ones_like(p)
        opt.step()  # a broken CUDA build fails here, not at import
        return bnb
    except Exception as e:  # any import or runtime failure means: use torch's AdamW
        detail = str(e).splitlines()[0][:120] if str(e) else "no detail"
        report(f"8-bit AdamW unavailable ({type(e).__name__}: {detail}); using torch AdamW "
               f"(optimizer state 4x larger)")
        return None


def _adamw(params_or_groups, config, bnb=None):
    """AdamW with config's settings: bitsandbytes' 8-bit one when `bnb` is given."""
    kw = dict(lr=config.learning_rate, betas=(config.adam_beta1, config.adam_beta2),
              weight_decay=config.adam_weight_decay, eps=config.adam_epsilon)
    if bnb is not None:
        return bnb.optim.AdamW8bit(params_or_groups, **kw)
    return torch.optim.AdamW(params_or_groups, **kw)


class InBackwardOptimizer(torch.optim.Optimizer):
    """One small optimizer per parameter, stepped by a hook the moment its gradient is ready.

    Looks like one optimizer to the training loop (state_dict, param_groups for the LR
    scheduler, step and zero_grad become no-ops), so checkpoints and schedules work unchanged.
    """

    def __init__(self, groups, config, bnb=None):
        self.max_norm = config.max_grad_norm
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
        # per-parameter clipping: the global norm is unknown until every gradient exists
        torch.nn.utils.clip_grad_norm_([p], self.max_norm)
        opt = self.per_param[p]
        opt.param_groups[0]["lr"] = self.param_groups[self.group_index[p]]["lr"]  # the schedule
        opt.step()
        p.grad = None  # free it now: this is the memory saved

    def step(self, closure=None):  # the hooks did it
        return None

    def zero_grad(self, set_to_none: bool = True):
        return None

    def state_dict(self):
        return {"per_param": [opt.state_dict() for opt in self.per_param.values()],
                "param_groups": [{k: v for k, v in g.items() if k != "params"}
                                 for g in self.param_groups]}

    def load_state_dict(self, state):
        for opt, s in zip(self.per_param.values(), state["per_param"]):
            opt.load_state_dict(s)
        for g, s in zip(self.param_groups, state["param_groups"]):
            g.update(s)


def make_optimizer(groups, config, report=print):
    """AdamW (8-bit when config.use_8bit_adam and bitsandbytes works), stepped after backward
    or, with config.optimizer_in_backward, inside it."""
    bnb = load_bnb(report) if config.use_8bit_adam else None  # checked once
    if config.optimizer_in_backward:
        return InBackwardOptimizer(groups, config, bnb)
    return _adamw(groups, config, bnb)
