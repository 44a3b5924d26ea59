"""Memory switches of the optimizer: 8-bit AdamW (and its fallback), the step inside backward."""

import sys

import pytest
import torch

from dreamkit import TrainConfig, train
from dreamkit.core.errors import ConfigError
from dreamkit.training.optim import InBackwardOptimizer, load_bnb, make_optimizer


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))


def _cfg(**kw):
    return TrainConfig(learning_rate=1e-2, adam_weight_decay=0.01, max_grad_norm=1e9, **kw)


def _run(model, opt, steps=3):
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(5, 8, generator=g)
        model(x).pow(2).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


def test_step_inside_backward_gives_the_same_update_as_after_it():
    a, b = _model(), _model()
    _run(a, make_optimizer([{"params": list(a.parameters()), "lr": 1e-2}], _cfg()))
    opt = make_optimizer([{"params": list(b.parameters()), "lr": 1e-2}],
                         _cfg(optimizer_in_backward=True))
    assert isinstance(opt, InBackwardOptimizer)
    _run(b, opt)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.allclose(p, q, atol=1e-6), (p - q).abs().max()
        assert q.grad is None  # freed inside backward: the memory saved


def test_8bit_adam_runs_here_and_changes_the_weights():
    assert load_bnb() is not None  # bitsandbytes 8-bit AdamW works on this CPU
    m = _model()
    before = [p.detach().clone() for p in m.parameters()]
    opt = make_optimizer([{"params": list(m.parameters())}], _cfg(use_8bit_adam=True))
    assert type(opt).__name__ == "AdamW8bit"
    _run(m, opt)
    assert all(not torch.equal(p, q) for p, q in zip(m.parameters(), before))


def test_broken_bitsandbytes_falls_back_with_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` now fails
    said = []
    opt = make_optimizer([{"params": list(_model().parameters())}], _cfg(use_8bit_adam=True),
                         report=said.append)
    assert type(opt) is torch.optim.AdamW
    assert len(said) == 1 and "8-bit AdamW unavailable" in said[0] and "torch AdamW" in said[0]


def test_in_backward_settings_are_checked():
    with pytest.raises(ConfigError, match="step_mode"):
        TrainConfig(optimizer_in_backward=True, step_mode="two_pass")
    with pytest.raises(ConfigError, match="gradient_accumulation_steps"):
        TrainConfig(optimizer_in_backward=True, gradient_accumulation_steps=2)
    assert TrainConfig(optimizer_in_backward=True, mixed_precision="fp16")  # loss-scaled


@pytest.mark.parametrize("extra", [{"use_8bit_adam": True},
                                   {"optimizer_in_backward": True, "checkpointing_steps": 2}])
def test_training_with_each_switch(extra, tiny_model, photos, tmp_path):
    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                      class_noun="toy", with_prior_preservation=True, num_class_images=2,
                      sample_batch_size=2, class_inference_steps=2, resolution=32,
                      max_train_steps=4, learning_rate=1e-3, output_dir=str(tmp_path / "run"),
                      sample_steps=2, num_sample_images=1, keep_checkpoints=True,
                      **{"checkpointing_steps": 0, **extra})
    plain = train(cfg.replace(use_8bit_adam=False, optimizer_in_backward=False,
                              output_dir=str(tmp_path / "plain")), callbacks=[])
    result = train(cfg, callbacks=[])
    assert result.step_mode == "one_pass" or "optimizer_in_backward" not in extra
    assert [h["step"] for h in result.history] == [1, 2, 3, 4]
    moved = [(p - q).abs().max().item() for p, q in zip(result.unet.parameters(),
                                                        plain.unet.parameters())]
    if extra.get("optimizer_in_backward"):
        # the same optimizer, stepped earlier: the same weights up to float rounding and the
        # per-parameter clipping (max_grad_norm 1.0 per parameter instead of over all)
        assert max(moved) < 5e-3, max(moved)
        resumed = train(cfg.replace(resume="auto", max_train_steps=6), callbacks=[])
        assert [h["step"] for h in resumed.history] == list(range(1, 7))
    else:
        assert max(moved) < 0.05  # 8-bit states: close to the fp32 run, not equal


def test_env_check_names_each_part_and_the_fallback(monkeypatch, capsys):
    from dreamkit.core.env import check
    from dreamkit.ui.cli import main

    rep = check()
    assert set(rep) == {"torch", "cuda", "bitsandbytes", "attention", "mixed_precision"}
    assert "8-bit AdamW works" in rep["bitsandbytes"] and "SDPA" in rep["attention"]
    assert "no GPU" in rep["cuda"]
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "8-bit AdamW unavailable" in out and "using torch AdamW" in out


def test_full_step_peak_on_meta_matches_real_tensors_and_in_backward_saves_gradients(tiny_model):
    from diffusers import UNet2DConditionModel

    from dreamkit.models.loading import load_components
    from dreamkit.planning.memory import full_step_peak

    comps = load_components(str(tiny_model))
    peaks = {}
    for inb in (False, True):
        cfg = TrainConfig(optimizer_in_backward=inb, gradient_checkpointing=True,
                          learning_rate=1e-4)
        fresh = type(comps.noise_scheduler).from_config  # add_noise moves its tables
        real = full_step_peak(UNet2DConditionModel.from_config(comps.unet.config),
                              fresh(comps.noise_scheduler.config), cfg, 16)
        with torch.device("meta"):
            meta_unet = UNet2DConditionModel.from_config(comps.unet.config)
        meta = full_step_peak(meta_unet, fresh(comps.noise_scheduler.config), cfg, 16)
        assert abs(meta["peak_adamw_bytes"] - real["peak_adamw_bytes"]) \
            <= 0.02 * real["peak_adamw_bytes"], (meta, real)
        # fp32 mean + variance per weight (+ a step counter per tensor); on meta the states
        # are made as torch makes them (memory._meta_states), not by an update: the same bytes
        assert 0 <= real["adamw_states_bytes"] - 2 * real["weights_bytes"] < 4096
        assert meta["adamw_states_bytes"] == real["adamw_states_bytes"], (meta, real)
        peaks[inb] = real
    saved = peaks[False]["peak_adamw_bytes"] - peaks[True]["peak_adamw_bytes"]
    assert saved >= 0.5 * peaks[False]["weights_bytes"], peaks  # ~one gradient's worth


@pytest.mark.parametrize("mode", ["one_pass", "two_pass"])
def test_cached_latents_train_like_encoding_every_step(mode, tiny_model, photos, tmp_path,
                                                       monkeypatch):
    from diffusers import AutoencoderKL

    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                      class_noun="toy", with_prior_preservation=True, num_class_images=3,
                      sample_batch_size=3, class_inference_steps=2, resolution=32,
                      max_train_steps=4, learning_rate=1e-3, output_dir=str(tmp_path / "a"),
                      sample_steps=2, num_sample_images=1, checkpointing_steps=0,
                      step_mode=mode, train_batch_size=2)
    plain = train(cfg, callbacks=[])
    encodes = []
    real_encode = AutoencoderKL.encode
    monkeypatch.setattr(AutoencoderKL, "encode",
                        lambda self, x, *a, **k: encodes.append(len(x)) or real_encode(self, x,
                                                                                      *a, **k))
    cached = train(cfg.replace(cache_latents=True, output_dir=str(tmp_path / "b")), callbacks=[])
    assert sum(encodes) == 4 + 3  # each photo and class image once, none during the steps
    # the same draws from the same distributions: equal up to batched-conv rounding
    for a, b in zip(plain.history, cached.history):
        assert abs(a["loss"] - b["loss"]) <= 1e-4 * max(1.0, a["loss"]), (a, b)


def test_precomputed_text_embeddings_encode_every_prompt_before_the_first_step(tiny_model,
                                                                               photos, tmp_path):
    from dreamkit import FunctionCallback
    from dreamkit.models.loading import load_components

    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                      class_noun="toy", with_prior_preservation=True, num_class_images=2,
                      sample_batch_size=2, class_inference_steps=2, resolution=32,
                      max_train_steps=4, learning_rate=1e-3, output_dir=str(tmp_path / "a"),
                      sample_steps=2, num_sample_images=1, checkpointing_steps=0)
    plain = train(cfg, callbacks=[])
    comps = load_components(str(tiny_model))
    calls, seen = [0], {}
    comps.text_encoder.register_forward_hook(lambda *a: calls.__setitem__(0, calls[0] + 1))
    done = train(cfg.replace(precompute_text_embeddings=True, output_dir=str(tmp_path / "b")),
                 components=comps,
                 callbacks=[FunctionCallback(on_step=lambda i: seen.__setitem__(i.step,
                                                                                calls[0]))])
    assert seen[1] == seen[4] >= 2  # every prompt encoded before step 1, none during steps
    assert [h["loss"] for h in done.history] == [h["loss"] for h in plain.history]
    from dreamkit.planning.planner import plan
    frozen = [plan(cfg.replace(precompute_text_embeddings=p), suggest=False)
              .parts["frozen VAE + text encoder"] for p in (False, True)]
    assert frozen[1] < frozen[0]  # the planner counts the text encoder off the GPU


def test_t4_settings_together_train_and_resume(tiny_model, photos, tmp_path, monkeypatch):
    """The whole T4 recipe through the loop: fp16's loss scale and check pass (accelerate does
    no autocast on the CPU, so the numbers stay fp32; tests above check fp16 autocast itself),
    the scale saved in the checkpoint and resumed, the final model written in fp16."""
    from safetensors import safe_open

    import dreamkit.training.run
    from dreamkit.planning.planner import T4_SETTINGS

    monkeypatch.setattr(dreamkit.training.run, "refuse_mixed_precision_on_cpu", lambda config: None)
    from dreamkit.core.precision import (
        Precision,  # the frozen parts stay fp32: no autocast
    )
    monkeypatch.setattr(Precision, "frozen_dtype", lambda self: torch.float32)  # to meet fp16
    from accelerate import Accelerator
    # a notebook whose kernel trained in fp32 before: the fp16 run must not need a restart
    # (it did: CI, xdist)
    Accelerator(cpu=True)
    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                      class_noun="toy", with_prior_preservation=True, num_class_images=2,
                      sample_batch_size=2, class_inference_steps=2, resolution=32,
                      max_train_steps=4, learning_rate=1e-3, output_dir=str(tmp_path / "run"),
                      sample_steps=2, num_sample_images=1, checkpointing_steps=2,
                      keep_checkpoints=True, **T4_SETTINGS)
    result = train(cfg, callbacks=[])
    assert result.step_mode == "one_pass"
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in result.history)
    state = torch.load(tmp_path / "run" / "checkpoints" / "step_000004" / "optimizer.pt",
                       weights_only=False)
    assert state["loss_scale"]["scale"] == 2.0 ** 16 and state["loss_scale"]["growth_tracker"] == 4
    more = train(cfg.replace(resume="auto", max_train_steps=6), callbacks=[])
    assert [h["step"] for h in more.history] == list(range(1, 7))
    assert (tmp_path / "run" / "model_index.json").is_file()
    fp32 = train(cfg.replace(mixed_precision="no", output_dir=str(tmp_path / "fp32"),
                             max_train_steps=1, with_prior_preservation=False), callbacks=[])
    assert fp32.history[0]["step"] == 1  # and back to fp32 in the same process
    with safe_open(str(tmp_path / "run" / "unet" / "diffusion_pytorch_model.safetensors"),
                   "pt") as f:  # save_precision auto: fp16 after fp16 training
        assert f.get_tensor(next(iter(f.keys()))).dtype == torch.float16


def _fp16_unet_steps(model_dir, opt_for, backward_for, overflow_at=None, steps=3):
    """`steps` DreamBooth steps of the tiny UNet under fp16 autocast (gradient checkpointing
    on), the same data for every caller; step `overflow_at` gets an inf in the gradient of
    conv_in.weight, the last weight backward reaches (after every other one is updated).
    Returns the UNet's weights after each step and the optimizer."""
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from dreamkit.training.step import dreambooth_backward

    unet = UNet2DConditionModel.from_pretrained(model_dir / "unet")
    unet.enable_gradient_checkpointing()
    unet.train()
    opt = opt_for(list(unet.parameters()))
    state = {"step": 0}
    unet.conv_in.weight.register_hook(  # runs before the weight's post-accumulate hooks
        lambda g: g * float("inf") if state["step"] == overflow_at else g)
    sched = DDPMScheduler(num_train_timesteps=1000)
    g = torch.Generator().manual_seed(0)
    c, size = unet.config, unet.config.sample_size
    after = []
    for step in range(steps):
        state["step"] = step
        latents, noise = (torch.randn(2, c.in_channels, size, size, generator=g) for _ in "ln")
        text = torch.randn(2, 77, c.cross_attention_dim, generator=g)
        t = torch.randint(0, 1000, (2,), generator=g)
        with torch.autocast("cpu", dtype=torch.float16):
            dreambooth_backward(unet, sched, latents, text, noise, t, n_instance=1,
                                backward=backward_for(opt))
        after.append({k: v.detach().clone() for k, v in unet.named_parameters()})
    return after, opt


def test_fp16_in_backward_equals_gradscaler_even_on_an_overflow(tiny_model):
    """T4_SETTINGS's fp16 route (loss scale, check pass, update inside backward) against the
    plain route: AdamW after backward with torch's GradScaler (per-weight clipping, as the
    in-backward step clips). Same weights after every step, to 1e-6; the overflowed step
    changes no weight on either route and halves both scales."""
    cfg = _cfg(optimizer_in_backward=True, mixed_precision="fp16").replace(max_grad_norm=1.0)
    scaler = torch.amp.GradScaler("cpu")

    def plain_backward(opt):
        def backward(loss):
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            for group in opt.param_groups:
                for p in group["params"]:
                    torch.nn.utils.clip_grad_norm_([p], cfg.max_grad_norm)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
        return backward

    plain, _ = _fp16_unet_steps(tiny_model, lambda ps: make_optimizer(
        [{"params": ps, "lr": 1e-2}], cfg.replace(optimizer_in_backward=False)),
        plain_backward, overflow_at=1)
    ours, opt = _fp16_unet_steps(tiny_model, lambda ps: make_optimizer(
        [{"params": ps, "lr": 1e-2}], cfg), lambda o: o.backward, overflow_at=1)
    assert isinstance(opt, InBackwardOptimizer) and opt.loss_scale is not None
    for step, (a, b) in enumerate(zip(plain, ours)):
        worst = max((a[k] - b[k]).abs().max().item() for k in a)
        assert worst <= 1e-6, f"step {step}: weights differ by {worst}"
    assert any(not torch.equal(plain[0][k], plain[2][k]) for k in plain[0])  # it trains
    assert all(torch.equal(ours[0][k], ours[1][k]) for k in ours[0])  # no partial update
    assert opt.loss_scale.skipped == 1
    assert opt.loss_scale.scale == scaler.get_scale() == 2.0 ** 15


def test_fp16_loss_scale_is_in_the_checkpoint_state():
    m = _model()
    opt = make_optimizer([{"params": list(m.parameters())}],
                         _cfg(optimizer_in_backward=True, mixed_precision="fp16"))
    opt.loss_scale.update(found_inf=True)
    again = make_optimizer([{"params": list(_model().parameters())}],
                           _cfg(optimizer_in_backward=True, mixed_precision="fp16"))
    again.load_state_dict(opt.state_dict())
    assert again.loss_scale == opt.loss_scale and again.loss_scale.scale == 2.0 ** 15


def test_t4_settings_trainer_scales_its_own_loss(tiny_model):
    """With fp16 and the step inside backward the loop's backward is the optimizer's (check
    pass + scaled loss); accelerate's own scaler is switched off for it in run.py."""
    from accelerate import Accelerator

    from dreamkit.models.loading import load_components
    from dreamkit.planning.planner import T4_SETTINGS
    from dreamkit.training.optim import prepare_trainables

    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), learning_rate=1e-3,
                      max_train_steps=2, **T4_SETTINGS)
    accelerator = Accelerator(cpu=True)  # fp16 itself needs a GPU: the wiring is checked here
    trainer, _ = prepare_trainables(cfg, load_components(str(tiny_model)), accelerator,
                                    [], torch.float32, report=lambda m: None)
    inner = trainer.optimizer.optimizer
    assert trainer.backward == inner.backward and inner.loss_scale.scale == 2.0 ** 16
    plain, _ = prepare_trainables(cfg.replace(mixed_precision="no"),
                                  load_components(str(tiny_model)), accelerator, [],
                                  torch.float32, report=lambda m: None)
    assert plain.backward == accelerator.backward
