"""How much memory a training step needs, measured without a GPU.

`LiveTensorTracker` watches every tensor the step creates (through a TorchDispatchMode) and
keeps the peak of live tensor bytes. Run on the **meta** device, tensors have shapes but no
data, so a full-size SD 1.5 step is "measured" in seconds on any laptop, and matches the same
count on real tensors (MEASURED.md: within 0.1 MB). These are tensor bytes: a real GPU adds its
CUDA context (~0.3-0.5 GB), library workspaces and allocator fragmentation.

`full_step_peak` runs one whole training step (the DreamBooth step of training/step.py in
either mode, then the optimizer) on a UNet and reports the peak, split into weights, optimizer
states and the rest (gradients, activations and temporaries), and the step's floating-point
operations (torch's FLOP formulas, counted as the step runs: matmuls, convolutions and
attention, forward, backward and the forward recomputed by gradient checkpointing). The planner
builds on it.
"""

from __future__ import annotations

import contextlib
import weakref

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from ..models.sdxl import is_sdxl
from ..training.optim import make_optimizer
from ..training.step import dreambooth_backward
from .meta_ops import on_meta, op_flops, tensors_in

__all__ = ["LiveTensorTracker", "fused_attention", "full_step_peak", "count_flops"]


class LiveTensorTracker(TorchDispatchMode):
    """Peak bytes of tensors created inside the `with` block that are alive at once.

    Each storage is counted once (views share it) and subtracted when Python frees it.
    """

    def __init__(self, existing=(), count_flops: bool = False):
        """`existing`: tensors alive before the block (weights, optimizer states); in-place
        updates of them return them again, and must not count as new memory. `count_flops`:
        also add up the ops' floating-point operations (`flops`) with torch's FLOP formulas
        (FlopCounterMode's, without its module tracking, whose hooks keep tensors alive)."""
        super().__init__()
        self.live = 0
        self.peak = 0
        self.flops = 0 if count_flops else None
        self._seen: set[int] = {t.untyped_storage()._cdata for t in existing}

    def _track(self, t: torch.Tensor) -> None:
        st = t.untyped_storage()
        key = st._cdata
        if key in self._seen:
            return
        nbytes = st.nbytes()
        self._seen.add(key)
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        weakref.finalize(st, self._free, key, nbytes)

    def _free(self, key: int, nbytes: int) -> None:
        if key in self._seen:
            self._seen.discard(key)
            self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = on_meta(func, args, kwargs or {})
        if self.flops is not None and func._overloadpacket in flop_registry:
            self.flops += op_flops(func, args, kwargs or {}, out)
        for t in tensors_in(out):
            self._track(t)
        return out


@contextlib.contextmanager
def fused_attention(kind: str = "cpu"):
    """Route F.scaled_dot_product_attention to one fused kernel while measuring.

    On meta tensors SDPA falls back to the math path, which materialises the whole attention
    matrix; a GPU (or the CPU's flash kernel) never does. kind: 'cpu' (flash for CPU),
    'gpu_fp32' (memory-efficient attention), 'gpu_fp16' (flash attention).
    """
    ops = torch.ops.aten
    original = F.scaled_dot_product_attention

    def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **_):
        if kind == "cpu":
            return ops._scaled_dot_product_flash_attention_for_cpu(
                q, k, v, dropout_p, is_causal, attn_mask=attn_mask, scale=scale)[0]
        if kind == "gpu_fp32":
            return ops._scaled_dot_product_efficient_attention(
                q, k, v, attn_mask, True, dropout_p, is_causal, scale=scale)[0]
        return ops._scaled_dot_product_flash_attention(
            q, k, v, dropout_p, is_causal, False, scale=scale)[0]

    F.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def count_flops(fn) -> int:
    """Floating-point operations of `fn()` (real or meta tensors): a multiply-add counts 2."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def full_step_peak(unet, noise_scheduler, config, latent_size: int, attention: str = "cpu",
                   params=None, mode: str = "one_pass", batch: int = 1,
                   with_prior: bool = True) -> dict:
    """Peak live-tensor bytes of one whole training step (forward, backward, optimizer step) of
    the full UNet, batch 1 + 1, with config's optimizer switches (optimizer_in_backward,
    gradient_checkpointing; torch AdamW). The optimizer's states are made before the measured
    step, so they exist as in a running job. Works on real or meta tensors (on meta, the
    measured update is taken as the GPU's fused AdamW makes it: in place, see
    `_updates_in_place`).

    Returns the step's FLOPs ("flops", counted while it runs) and
    bytes: weights, optimizer states, the step's own peak above them, the total, and the total
    with 8-bit AdamW states instead (2 bytes per weight + an fp32 absmax per 256 values per
    state: arithmetic, since bitsandbytes cannot run on meta tensors); and
    "copies_per_op_bytes", the most of the weights' fp16 copies that autocast without its cache
    holds at once (see `_copies_per_op`).
    """
    if params is None:  # the full UNet trains; otherwise (LoRA) the caller marked `params`
        unet.requires_grad_(True)
        params = list(unet.parameters())
    unet.train()
    checkpointed = []
    if config.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
        _record_checkpointed(unet, checkpointed)
    # AdamW runs on meta tensors; Prodigy reads values (.item()), so its two extra states per
    # weight (s, and the starting weights p0) are added below, arithmetically
    opt = make_optimizer([{"params": params, "lr": config.learning_rate}],
                         config.replace(use_8bit_adam=False, optimizer="adamw"),
                         report=lambda m: None)
    dev, c = params[0].device, unet.config
    dtype = next(unet.parameters()).dtype
    n = 2 * batch if with_prior else batch  # instance rows, then as many class rows
    inputs = [torch.randn(n, c.in_channels, latent_size, latent_size, device=dev, dtype=dtype),
              torch.randn(n, 77, c.cross_attention_dim, device=dev, dtype=dtype),
              torch.randn(n, c.in_channels, latent_size, latent_size, device=dev, dtype=dtype),
              torch.randint(0, 1000, (n,), device=dev)]

    added = None
    if is_sdxl(unet):  # SDXL: pooled text + time ids
        pooled = c.projection_class_embeddings_input_dim - 6 * c.addition_time_embed_dim
        added = {"text_embeds": torch.randn(n, pooled, device=dev, dtype=dtype),
                 "time_ids": torch.randn(n, 6, device=dev, dtype=dtype)}
        inputs += list(added.values())

    def step():
        dreambooth_backward(unet, noise_scheduler, *inputs[:4], n_instance=batch, mode=mode,
                            added_cond=added, backward=getattr(opt, "backward", None))
        opt.step()
        opt.zero_grad(set_to_none=True)

    opts = list(opt.per_param.values()) if hasattr(opt, "per_param") else [opt]
    with fused_attention(attention):
        # the optimizer states must exist, as in a running job (made without a forward and
        # backward)
        _create_states(opts, params)
        states = [t for o in opts for s in o.state.values() for t in s.values()
                  if torch.is_tensor(t)]
        tracker = LiveTensorTracker(existing=list(unet.parameters()) + states + inputs,
                                    count_flops=True)
        with tracker, _updates_in_place(opts, dev.type == "meta"):  # measured and counted
            step()
    weights, state_bytes = _nbytes(unet.parameters()), _nbytes(states)
    if config.optimizer == "prodigy":
        state_bytes += 2 * 4 * sum(p.numel() for p in params)  # s and p0, in fp32
    total = weights + state_bytes + _nbytes(inputs) + tracker.peak
    # bitsandbytes keeps tensors under 4096 values in fp32 (its min_8bit_size)
    eight_bit = sum(2 * p.numel() + 2 * 4 * -(-p.numel() // 256) if p.numel() >= 4096
                    else 8 * p.numel() for p in params)
    return {"weights_bytes": weights, "trained_bytes": _nbytes(params),
            "copies_per_op_bytes": _copies_per_op(unet, checkpointed),
            "adamw_states_bytes": state_bytes,
            "step_peak_above_states_bytes": tracker.peak, "peak_adamw_bytes": total,
            "peak_8bit_adam_bytes": total - state_bytes + eight_bit, "flops": tracker.flops}


def _create_states(optimizers, params) -> None:
    """Each optimizer's states, shaped as a real step's. On meta tensors they are made as
    torch's AdamW makes them before its first update (`_meta_states`): an update would loop
    over the weights (fused AdamW does not run there), 0.9 s of a 3 s plan of SD 1.5. Real
    tensors (the CPU, the tests' checks against a real run) make them by one update on zero
    gradients."""
    if bool(params) and params[0].device.type == "meta":
        for o in optimizers:
            _meta_states(o)
        return
    for p in params:
        p.grad = torch.zeros_like(p)
    for o in optimizers:
        o.step()
    for p in params:
        p.grad = None


def _meta_states(optimizer) -> None:
    """AdamW's states of every weight, as torch.optim.Adam's `_init_group` makes them (not
    fused, not capturable): the step count (a float on the CPU), the running mean and the
    running variance (zeros shaped like the weight), and the running maximum with amsgrad."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            state = {"step": torch.tensor(0.0)}
            names = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group.get("amsgrad")
                                                 else ())
            state.update({n: torch.zeros_like(p, memory_format=torch.preserve_format)
                          for n in names})
            optimizer.state[p] = state


@contextlib.contextmanager
def _updates_in_place(optimizers, meta: bool):
    """The measured step's weight updates, on meta tensors, as the GPU makes them: torch's fused
    AdamW (optim.py) changes weights and states in place and allocates nothing, so the update
    adds no bytes to the peak (the gradients it reads are counted by then). torch's
    per-weight loop, all it runs on meta, would add temporaries (the largest weight's size,
    twice) that the GPU does not have, and took a third of a plan's time. Real tensors (the
    CPU, the tests' checks against a real run) update for real."""
    if not meta:
        yield
        return
    for o in optimizers:
        o.step = lambda closure=None: None  # this instance only, for this measured step
    try:
        yield
    finally:
        for o in optimizers:
            del o.step


def _record_checkpointed(unet, found: list) -> None:
    """Note each module diffusers runs under gradient checkpointing (in `found`), as it runs."""
    for m in unet.modules():
        if getattr(m, "gradient_checkpointing", False) and hasattr(m, "_gradient_checkpointing_func"):
            def recorder(fn, *args, _run=m._gradient_checkpointing_func, **kw):
                if fn not in found:
                    found.append(fn)
                return _run(fn, *args, **kw)
            m._gradient_checkpointing_func = recorder


def _copies_per_op(unet, checkpointed: list) -> int:
    """Bytes of fp16 weight copies alive at once under autocast with its cache off (what
    dreamkit does with gradient checkpointing and mixed precision; run.py). A weight's copy is
    made by the op that uses it; inside a checkpointed module it is dropped after the op (and
    made again when backward recomputes that module), outside one it is kept for backward. So:
    the weights outside every checkpointed module, plus the largest checkpointed module.
    Without checkpointing (empty list): every weight's copy, as autocast's cache holds them."""
    inside = {id(p) for m in checkpointed for p in m.parameters()}
    outside = sum(p.numel() for p in unet.parameters() if id(p) not in inside)
    largest = max((sum(p.numel() for p in m.parameters()) for m in checkpointed), default=0)
    return 2 * (outside + largest)
