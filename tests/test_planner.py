"""The memory planner: its estimate against the real peak of whole training runs on the tiny
model, and its verdicts for full-size SD 1.5 on a T4 (counted on the meta device)."""

import json
import re

import pytest

from dreamkit import TrainConfig, train
from dreamkit.planning.memory import LiveTensorTracker, count_flops
from dreamkit.planning.planner import PEAK_TFLOPS, plan, rank_recipes
from dreamkit.ui.cli import main

NOT_TENSORS = ("CUDA context", "allocator slack (5%)")


@pytest.mark.parametrize("extra", [{}, {"gradient_checkpointing": True,
                                        "optimizer_in_backward": True},
                                   {"use_lora": True}, {"use_8bit_adam": True},
                                   {"train_batch_size": 2},
                                   {"step_mode": "two_pass", "train_text_encoder": True}])
def test_estimate_within_10_percent_of_a_real_runs_peak(extra, tiny_model, photos, tmp_path):
    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                      class_noun="toy", with_prior_preservation=True, num_class_images=2,
                      sample_batch_size=2, class_inference_steps=2, resolution=32,
                      max_train_steps=2, learning_rate=1e-3, output_dir=str(tmp_path / "run"),
                      sample_steps=2, num_sample_images=1, checkpointing_steps=0,
                      cache_latents=False, **extra)  # on a GPU the cache lets the VAE leave it,
    # a CPU keeps it: the plan's figure is the GPU's, so the VAE stays in both here
    train(cfg, callbacks=[])  # makes the class images, so the measured run only trains
    tracker = LiveTensorTracker()
    with tracker:  # every tensor of a whole run: models, data, states, steps, samples
        train(cfg, callbacks=[], overwrite=True)
    estimate = plan(cfg, gpu="T4", suggest=False)
    tensors = sum(v for k, v in estimate.parts.items() if k not in NOT_TENSORS)
    assert abs(tensors - tracker.peak) <= 0.10 * tracker.peak, (tensors, tracker.peak)


def test_full_size_sd15_on_a_t4_verdicts_and_suggestion():
    base = dict(instance_dir="photos", class_noun="dog", with_prior_preservation=True,
                resolution=512)
    plain = plan(TrainConfig(**base), gpu="T4")
    assert not plain.fits and plain.total > 15
    # auto, from both modes' figures: the full fp32 UNet's weights and gradients dominate, so
    # two passes do not lower the peak (MEASURED: 7641 vs 8373 MB of step tensors)
    assert plain.step_mode == "one_pass", plain.step_mode_reason
    assert re.search(r"two passes would raise the peak by \d+% \(peak [\d.]+ GiB in one "
                     r"pass, [\d.]+ GiB in two\)", plain.step_mode_reason), plain.step_mode_reason
    change, total = plain.suggestions[0]
    assert total <= 15.0 and change  # the cheapest change that fits, with its estimate
    assert "does NOT fit; try" in plain.line()
    low = plan(TrainConfig(**base, gradient_checkpointing=True, optimizer_in_backward=True,
                           use_8bit_adam=True, cache_latents=True), gpu="T4")
    assert low.fits and low.total <= 8.0, low.text()  # the goal, as estimated here
    assert set(low.parts) >= {"weights (UNet)", "optimizer states", "activations + gradients",
                              "frozen VAE + text encoder", "CUDA context"}
    # and the time: SD 1.5 at 512 px, 1 + 1 images, is ~5 TFLOP a step (forward ~1.6 TFLOP);
    # recomputing activations adds forward work
    assert 4.0e12 <= plain.flops <= 6.0e12 and low.flops > plain.flops, (plain.flops, low.flops)
    assert low.arithmetic == "fp32"
    assert low.time_floor == pytest.approx(low.flops / (PEAK_TFLOPS["T4"]["fp32"] * 1e12))
    assert "time ≥ " in low.line() and "TFLOPS fp32" in low.line()


def test_t4_settings_train_in_fp16_within_8_gb_and_faster_than_fp32():
    from dreamkit.planning.planner import T4_SETTINGS
    base = TrainConfig(instance_dir="photos", class_noun="dog", with_prior_preservation=True,
                       resolution=512, **T4_SETTINGS)
    fp16 = plan(base, gpu="T4", suggest=False)
    fp32 = plan(base.replace(mixed_precision="no"), gpu="T4", suggest=False)
    assert fp16.arithmetic == "fp16" and fp16.total * 2**30 <= 8.0e9, fp16.text()  # 8.0 GB
    # fp16's check pass is one more backward (+~75 % FLOPs), at 8x the T4's fp32 peak
    assert 1.5 < fp16.flops / fp32.flops < 2.0, (fp16.flops, fp32.flops)
    assert fp16.time_floor < fp32.time_floor / 3, (fp16.time_floor, fp32.time_floor)
    # autocast without its cache: a fraction of the 1.6 GiB of fp16 copies is alive at once
    assert 0 < fp16.parts["fp16 weight copies"] < 0.25 * fp16.parts["weights (UNet)"]


def test_fp16_weight_copies_counted_as_a_real_autocast_step_holds_them(tiny_model):
    """The planner's arithmetic for autocast's weight copies (memory._copies_per_op) against a
    real fp16-autocast step on the CPU, with autocast's cache off (what dreamkit uses with
    gradient checkpointing) and on (every copy kept): within 10 %."""
    import torch
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from dreamkit.planning.memory import full_step_peak
    from dreamkit.training.step import dreambooth_backward
    cfg = TrainConfig(optimizer_in_backward=True, mixed_precision="fp16",
                      gradient_checkpointing=True, learning_rate=1e-4)
    sched = DDPMScheduler(num_train_timesteps=1000)
    unet = UNet2DConditionModel.from_pretrained(tiny_model / "unet")
    size, c = unet.config.sample_size, unet.config
    with torch.device("meta"):
        meta = UNet2DConditionModel.from_config(unet.config).to(torch.bfloat16)
    planned = full_step_peak(meta, DDPMScheduler(num_train_timesteps=1000), cfg, size, "cpu")
    unet.enable_gradient_checkpointing()
    unet.train()
    from dreamkit.training.optim import make_optimizer
    opt = make_optimizer([{"params": list(unet.parameters()), "lr": 1e-4}], cfg)
    x, n = torch.randn(2, c.in_channels, size, size), torch.randn(2, c.in_channels, size, size)
    text, t = torch.randn(2, 77, c.cross_attention_dim), torch.tensor([10, 500])

    def step(cache):
        with torch.autocast("cpu", dtype=torch.float16, cache_enabled=cache):
            dreambooth_backward(unet, sched, x, text, n, t, n_instance=1, backward=opt.backward)

    step(False)  # the optimizer states exist from here on
    peaks = {}
    for cache in (False, True):
        states = [s for o in opt.per_param.values() for st in o.state.values()
                  for s in st.values() if torch.is_tensor(s)]
        tracker = LiveTensorTracker(existing=list(unet.parameters()) + states + [x, n, text, t])
        with tracker:
            step(cache)
        peaks[cache] = tracker.peak
    without_cache = planned["step_peak_above_states_bytes"] + planned["copies_per_op_bytes"]
    with_cache = planned["step_peak_above_states_bytes"] + planned["weights_bytes"]
    assert abs(without_cache - peaks[False]) <= 0.10 * peaks[False], (without_cache, peaks)
    assert abs(with_cache - peaks[True]) <= 0.10 * peaks[True], (with_cache, peaks)
    assert peaks[True] > peaks[False]


def test_meta_results_worked_out_once_give_the_same_figures(tiny_model, monkeypatch):
    """meta_ops.on_meta makes the result of an op on inputs alike as the first one was, and
    op_flops counts its FLOPs once: the step's peak, FLOPs and every part are the same as with
    torch working each out anew (a full and a LoRA step, with checkpointing and clipping)."""
    import dreamkit.planning.meta_ops as meta_ops
    from dreamkit.planning.planner import _measure_step

    class Forgets(dict):
        def __setitem__(self, key, value):
            pass

    base = dict(pretrained_model_name_or_path=str(tiny_model), class_noun="toy",
                with_prior_preservation=True, resolution=64)
    cfgs = [TrainConfig(**base, train_text_encoder=True, mixed_precision="fp16"),
            TrainConfig(**base, use_lora=True, gradient_checkpointing=True, max_grad_norm=1.0)]
    monkeypatch.setattr(meta_ops, "RESULTS", {})
    monkeypatch.setattr(meta_ops, "FLOPS", {})
    kept = [_measure_step(c, mode) for c in cfgs for mode in ("one_pass", "two_pass")]
    assert len(meta_ops.RESULTS) > 10 and len(meta_ops.FLOPS) > 5  # worked out once, reused
    monkeypatch.setattr(meta_ops, "SHAPE_ONLY", set())
    monkeypatch.setattr(meta_ops, "FLOPS", Forgets())
    anew = [_measure_step(c, mode) for c in cfgs for mode in ("one_pass", "two_pass")]
    assert kept == anew


def test_flops_match_a_hand_count_on_small_layers():
    import torch
    lin, x = torch.nn.Linear(64, 32), torch.randn(8, 64)
    one = 2 * 8 * 64 * 32  # one 8x64 @ 64x32 matmul: a multiply-add counts 2
    assert count_flops(lambda: lin(x)) == one
    # backward: the weight's gradient (x has none to compute): one more matmul of that size
    assert count_flops(lambda: lin(x).sum().backward()) == 2 * one
    xg = torch.randn(8, 64, requires_grad=True)  # and the input's gradient: a third one
    assert count_flops(lambda: lin(xg).sum().backward()) == 3 * one
    conv, img = torch.nn.Conv2d(4, 8, 3, padding=1), torch.randn(2, 4, 16, 16)
    # each of 2 x 8 x 16 x 16 outputs is a sum over 4 x 3 x 3 inputs
    assert count_flops(lambda: conv(img)) == 2 * (2 * 8 * 16 * 16) * (4 * 3 * 3)
    with torch.device("meta"):  # the planner counts on shapes only: the same figure
        lin_m, x_m = torch.nn.Linear(64, 32), torch.randn(8, 64)
    assert count_flops(lambda: lin_m(x_m)) == one
    # the plan's own count, made while the memory tracker watches the step: the same figures
    tracker = LiveTensorTracker(count_flops=True)
    with tracker:
        lin(xg).sum().backward()
        conv(img)
    assert tracker.flops == 3 * one + 2 * (2 * 8 * 16 * 16) * (4 * 3 * 3)


def test_both_step_modes_count_the_same_flops(tiny_model):
    """The planner counts FLOPs once for 'auto' (two passes split the batch, the operations
    stay): true of the real step."""
    import torch
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from dreamkit.planning.memory import full_step_peak
    config = json.loads((tiny_model / "unet" / "config.json").read_text())
    flops = {}
    for mode in ("one_pass", "two_pass"):
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(config)
        flops[mode] = full_step_peak(unet, DDPMScheduler(num_train_timesteps=1000), TrainConfig(),
                                     unet.config.sample_size, mode=mode)["flops"]
    assert flops["one_pass"] > 0
    assert abs(flops["two_pass"] - flops["one_pass"]) <= 0.001 * flops["one_pass"], flops


def test_plan_memory_cli(tiny_model, capsys):
    code = main(["plan-memory", "--pretrained_model_name_or_path", str(tiny_model),
                 "--class_noun", "toy", "--resolution", "32", "--gpu", "T4"])
    out = capsys.readouterr().out
    assert code == 0 and "memory plan: ~" in out and "fits" in out and "optimizer states" in out


def test_recipes_ranked_fitting_first_then_by_time(tiny_model, capsys, monkeypatch):
    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), instance_dir="photos",
                      class_noun="toy", with_prior_preservation=True, resolution=32)
    ranked = rank_recipes(cfg, gpu="T4")
    assert len(ranked) == 4
    floors = [p.time_floor for _, p in ranked if p.fits]
    assert floors == sorted(floors) and all(f > 0 for f in floors)
    fp16 = dict(ranked)["fp16 + 8-bit AdamW + checkpointing (the usual Colab recipe)"]
    assert fp16.arithmetic == "fp16" and fp16.peak_tflops == 65.0
    import dreamkit.planning.planner
    lora = "LoRA rank 4, fp16 + checkpointing"
    monkeypatch.setattr(dreamkit.planning.planner, "RECIPES", {lora: dreamkit.planning.planner.RECIPES[lora]})
    code = main(["plan-memory", "--pretrained_model_name_or_path", str(tiny_model),
                 "--class_noun", "toy", "--resolution", "32", "--gpu", "T4", "--recipes"])
    out = capsys.readouterr().out
    assert code == 0 and "recipes on T4, those that fit first, fastest first:" in out
    assert f"  {lora}: ~" in out and out.count("TFLOPS") == 2  # the plan, then the recipe
    assert main(["plan-memory", "--gpu", "T5"]) == 2
    assert "choose one of T4" in capsys.readouterr().err


def test_sdxl_lora_at_1024_fits_a_t4_by_the_estimate():
    cfg = TrainConfig(pretrained_model_name_or_path="stabilityai/stable-diffusion-xl-base-1.0",
                      instance_dir="photos", class_noun="dog", with_prior_preservation=True,
                      resolution=1024, use_lora=True, mixed_precision="fp16",
                      gradient_checkpointing=True, learning_rate=1e-4)
    result = plan(cfg, gpu="T4", suggest=False)  # offline: shipped SDXL configs
    assert result.parts["weights (UNet)"] > 4.7 * 2**30  # 2.57 B values in half precision
    # auto, from both modes' figures: LoRA at 1024 px, activations dominate: two passes
    assert result.step_mode == "two_pass", result.step_mode_reason
    assert "two passes lower the peak by" in result.step_mode_reason
    assert result.fits and result.total <= 11.0, result.text()  # the SDXL goal


def test_a_plan_is_made_once_per_model_and_shape_settings(tiny_model, tmp_path, monkeypatch):
    """The second plan of the same model and shape settings (another learning rate or step
    count) is read back, in a new process too (from DREAMKIT_CACHE); a shape setting measures
    again; a damaged cache file is measured again."""
    import json
    import subprocess
    import sys

    import dreamkit.planning.plancache as cache
    monkeypatch.setenv("DREAMKIT_CACHE", str(tmp_path / "cache"))
    import dreamkit.core.keep as keep
    monkeypatch.setattr(keep, "_MEMO", {})
    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), class_noun="toy",
                      with_prior_preservation=True, resolution=64)
    calls = []
    real = cache.cached_measure

    def counting(config, mode, measure):
        return real(config, mode, lambda *a: calls.append(a[1]) or measure(*a))
    monkeypatch.setattr("dreamkit.planning.planner.cached_measure", counting)
    first = plan(cfg, suggest=False)
    assert sorted(calls) == ["one_pass", "two_pass"]
    again = plan(cfg.replace(learning_rate=1e-3, max_train_steps=7), suggest=False)
    assert len(calls) == 2 and again.parts == first.parts and again.flops == first.flops
    plan(cfg.replace(resolution=32), suggest=False)  # another shape: measured
    assert len(calls) == 4
    files = sorted((tmp_path / "cache" / "plans").glob("*.json"))
    assert len(files) == 4
    code = (f"from dreamkit import TrainConfig; from dreamkit.planning.planner import plan; "
            f"import dreamkit.planning.plancache as c, json; "
            f"import dreamkit.core.keep as k; k._write = None; "  # reading only
            f"p = plan(TrainConfig(pretrained_model_name_or_path={str(tiny_model)!r}, "
            f"class_noun='toy', with_prior_preservation=True, resolution=64), suggest=False); "
            f"print(json.dumps([p.total, p.flops, p.step_mode]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**__import__("os").environ, "DREAMKIT_CACHE": str(tmp_path / "cache")})
    assert json.loads(r.stdout) == [first.total, first.flops, first.step_mode], r.stderr[-2000:]
    for f in files:
        f.write_text("{not json")
    monkeypatch.setattr(keep, "_MEMO", {})
    assert plan(cfg, suggest=False).parts == first.parts and len(calls) == 6


def test_a_plan_of_an_id_not_read_here_is_reused_only_while_it_cannot_be_read(
        tiny_model, tmp_path, monkeypatch):
    """Offline, a hub id is planned (and its disk sizes counted) from dreamkit's shipped SD 1.5
    configs, once: a new process reads it back from DREAMKIT_CACHE. Once the id's own configs
    are in the Hub cache, it is planned and counted from them, not from what was assumed."""
    import shutil

    from huggingface_hub import constants

    import dreamkit.core.keep as keep
    import dreamkit.planning.plancache as cache
    from dreamkit.planning.space import parameter_counts
    monkeypatch.setenv("DREAMKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(keep, "_MEMO", {})
    calls = []
    real = cache.cached_measure
    monkeypatch.setattr("dreamkit.planning.planner.cached_measure", lambda config, mode, measure:
                        real(config, mode, lambda *a: calls.append(a[1]) or measure(*a)))
    cfg = TrainConfig(pretrained_model_name_or_path="someone/small-model", class_noun="toy",
                      resolution=64, use_lora=True)
    assumed = plan(cfg, suggest=False)
    counted = parameter_counts(cfg)
    assert assumed.text().startswith("assumed SD 1.5") and calls == ["one_pass"]
    assert counted["unet"] > 800e6  # SD 1.5's UNet
    monkeypatch.setattr(keep, "_MEMO", {})  # as a new process: from the files
    again = plan(cfg, suggest=False)
    assert calls == ["one_pass"] and again.parts == assumed.parts
    assert again.text().startswith("assumed SD 1.5") and parameter_counts(cfg) == counted
    snapshot = tmp_path / "hub" / "models--someone--small-model" / "snapshots" / ("0" * 40)
    for part in ("unet", "vae", "text_encoder"):
        (snapshot / part).mkdir(parents=True)
        shutil.copy(tiny_model / part / "config.json", snapshot / part / "config.json")
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(keep, "_MEMO", {})
    own = plan(cfg, suggest=False)  # the id can be read now: planned from its own configs
    assert calls == ["one_pass", "one_pass"] and not own.text().startswith("assumed")
    assert own.total < assumed.total and parameter_counts(cfg)["unet"] < 10e6
