"""The field's usual training knobs (TrainConfig; docs/knobs.md for their measured effects):
each one changes what it should, in the step, the batch, the optimizer, the adapters, the
schedule and the logs. Exact resume with them on: tests/test_checkpoint.py; bad values:
docs/bad-inputs.md (tests/test_bad_inputs_api.py)."""

import json

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from dreamkit import FunctionCallback, TrainConfig, train
from dreamkit.core.steps import epoch_length, resolve_epochs, steps_per_epoch
from dreamkit.training.loss import denoising_loss, min_snr_weights


def _config(tiny_model, photos, out, **kw):
    return TrainConfig(**{"pretrained_model_name_or_path": str(tiny_model),
                          "instance_dir": str(photos), "class_noun": "toy", "resolution": 32,
                          "max_train_steps": 3, "learning_rate": 1e-3, "output_dir": str(out),
                          "sample_steps": 1, "num_sample_images": 1, "checkpointing_steps": 0,
                          **kw})


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction"])
def test_min_snr_weights_equal_the_hand_computation(prediction):
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear",
                          prediction_type=prediction)
    # DDPM's linear schedule, by hand, in float32 as schedulers store it (near t = 0, 1 - ᾱ is
    # ~1e-4, where float32's rounding shows in the 4th digit)
    betas = np.linspace(1e-4, 0.02, 1000, dtype=np.float32)
    alpha_bar = np.cumprod(1 - betas, dtype=np.float32).astype(np.float64)
    t = torch.tensor([0, 10, 100, 500, 999])
    s = alpha_bar[t.numpy()] / (1 - alpha_bar[t.numpy()])
    hand = np.minimum(s, 5.0) / (s + 1 if prediction == "v_prediction" else s)
    got = min_snr_weights(sched, t, 5.0).numpy()
    np.testing.assert_allclose(got, hand, rtol=1e-4)
    assert got[0] < 0.01 and got[-1] == pytest.approx(1.0 if prediction == "epsilon" else
                                                      s[-1] / (s[-1] + 1), rel=1e-4)
    pred, target = torch.randn(5, 4, 8, 8), torch.randn(5, 4, 8, 8)
    per_sample = ((pred - target) ** 2).mean(dim=(1, 2, 3))
    assert denoising_loss(pred, target, torch.tensor(hand)).item() == pytest.approx(
        float((per_sample.numpy() * hand).mean()), rel=1e-5)


def test_min_snr_gives_the_same_gradient_in_both_step_modes(tiny_model):
    from dreamkit.models.loading import load_components
    from dreamkit.training.step import dreambooth_backward
    comps = load_components(str(tiny_model))
    unet, sched = comps.unet, comps.noise_scheduler
    g = torch.Generator().manual_seed(0)
    latents, noise = torch.randn(4, 4, 16, 16, generator=g), torch.randn(4, 4, 16, 16, generator=g)
    text = torch.randn(4, 77, unet.config.cross_attention_dim, generator=g)
    t = torch.tensor([5, 300, 600, 990])
    grads = {}
    for mode in ("one_pass", "two_pass"):
        unet.zero_grad()
        dreambooth_backward(unet, sched, latents, text, noise, t, n_instance=2, mode=mode,
                            prior_loss_weight=0.5, weights=min_snr_weights(sched, t, 5.0))
        grads[mode] = torch.cat([p.grad.flatten() for p in unet.parameters()])
    torch.testing.assert_close(grads["one_pass"], grads["two_pass"], rtol=1e-4, atol=1e-6)


def _captured_noise(monkeypatch, tiny_model, photos, out, **kw):
    from dreamkit.training import loop
    seen = []
    real = loop.dreambooth_backward

    def spy(unet, sched, latents, text, noise, *a, **k):
        seen.append(noise.detach().clone())
        return real(unet, sched, latents, text, noise, *a, **k)
    monkeypatch.setattr(loop, "dreambooth_backward", spy)
    train(_config(tiny_model, photos, out, max_train_steps=4, train_batch_size=2, **kw),
          callbacks=[])
    return torch.cat(seen)


def test_noise_offset_shifts_each_channel_of_the_noise(monkeypatch, tiny_model, photos, tmp_path):
    plain = _captured_noise(monkeypatch, tiny_model, photos, tmp_path / "a")
    offset = _captured_noise(monkeypatch, tiny_model, photos, tmp_path / "b", noise_offset=0.5)
    # per image and channel, the noise's mean: ~N(0, 1/256) without, ~N(0, 0.25) with
    assert plain.mean(dim=(2, 3)).std() < 0.15
    assert 0.3 < offset.mean(dim=(2, 3)).std() < 0.8
    assert 0.9 < plain.std() < 1.1


@pytest.mark.parametrize("cache", [True, False])
def test_random_flip_mirrors_rows_of_the_batch(cache, monkeypatch, tiny_model, photos, tmp_path):
    from dreamkit.inputs import cache as cache_module
    flips, encoded = [], []
    real_call = cache_module.StepInputs.__call__

    def spy(self, batch, trains):
        out = real_call(self, batch, trains)
        flips.append(self.last_flips.clone())
        if self.latent_cache is not None and not encoded:
            encoded.append(self.latent_cache.parts)
        return out
    monkeypatch.setattr(cache_module.StepInputs, "__call__", spy)
    train(_config(tiny_model, photos, tmp_path / "run", random_flip=True, cache_latents=cache,
                  max_train_steps=6, train_batch_size=2), callbacks=[])
    every = torch.cat(flips)
    assert 0 < every.sum() < len(every)  # some rows mirrored, some not
    if cache:  # a mirrored row's latent is the mirrored photo's, encoded (not a mirrored latent)
        from dreamkit.models.loading import load_components
        from dreamkit.inputs.photos import find_images, load_image
        from dreamkit.inputs.photos import _normalise, _uint8
        vae = load_components(str(tiny_model)).vae
        first = find_images(photos).images[0]
        x = _normalise(_uint8(load_image(first, 32)))[None]
        mean_flipped = vae.encode(x.flip(-1)).latent_dist.mean
        parts = encoded[0]
        rows = {str(p): i for i, p in enumerate(find_images(photos).images)}
        torch.testing.assert_close(parts[("instance", True)][0][rows[str(first)]],
                                   mean_flipped[0], rtol=1e-4, atol=1e-5)
        assert not torch.allclose(parts[("instance", True)][0], parts[("instance", False)][0])


def test_prodigy_takes_steps_with_the_configured_options(tiny_model, photos, tmp_path):
    from prodigyopt import Prodigy

    from dreamkit.core.errors import ConfigError
    from dreamkit.training.optim import make_optimizer
    w = torch.nn.Parameter(torch.ones(3))
    opt = make_optimizer([{"params": [w], "lr": 1.0}],
                         TrainConfig(optimizer="prodigy", learning_rate=1.0, prodigy_beta3=0.5,
                                     prodigy_decouple=False, adam_weight_decay=0.0),
                         report=lambda m: None)
    assert isinstance(opt, Prodigy)
    group = opt.param_groups[0]
    assert (group["beta3"], group["decouple"], group["weight_decay"]) == (0.5, False, 0.0)
    result = train(_config(tiny_model, photos, tmp_path / "run", optimizer="prodigy",
                           learning_rate=1.0, max_train_steps=4), callbacks=[])
    from dreamkit.models.loading import load_components
    base = load_components(str(tiny_model)).unet.state_dict()
    moved = max((result.unet.state_dict()[k] - v).abs().max().item() for k, v in base.items())
    assert moved > 0
    lrs = [h["lr"] for h in result.history]
    assert lrs == [1.0] * 4  # Prodigy's step is d × lr; the schedule's lr stays as set
    with pytest.raises(ConfigError, match="optimizer='prodigy'"):
        TrainConfig(optimizer="prodigy", optimizer_in_backward=True)


def test_prodigy_at_a_low_learning_rate_is_told(tiny_model, photos, tmp_path):
    said = []
    train(_config(tiny_model, photos, tmp_path / "run", optimizer="prodigy",
                  learning_rate=1e-4, max_train_steps=1),
          callbacks=[FunctionCallback(on_message=said.append)])
    assert any("1.0 is usual" in m for m in said), said


def test_dora_layers_are_trained_saved_and_reloaded_by_diffusers(tiny_model, photos, tmp_path):
    from safetensors import safe_open

    from dreamkit.models.loading import load_pipeline
    result = train(_config(tiny_model, photos, tmp_path / "run", use_lora=True, use_dora=True,
                           lora_dropout=0.1, learning_rate=1e-2, max_train_steps=4),
                   callbacks=[])
    trained = {n: p.detach() for n, p in result.unet.named_parameters()
               if "lora_magnitude_vector" in n}
    assert trained, "no DoRA magnitudes in the trained UNet"
    with safe_open(str(tmp_path / "run" / "pytorch_lora_weights.safetensors"), "pt") as f:
        saved = [k for k in f.keys() if "lora_magnitude_vector" in k]
    assert len(saved) == len(trained)
    pipe = load_pipeline(str(tmp_path / "run"))
    assert all(c.use_dora for c in pipe.unet.peft_config.values())
    loaded = {n: p for n, p in pipe.unet.named_parameters() if "lora_magnitude_vector" in n}
    for (_, a), (_, b) in zip(sorted(trained.items()), sorted(loaded.items())):
        torch.testing.assert_close(a.float(), b.float())
    with safe_open(str(tmp_path / "run" / "run.safetensors"), "pt") as f:  # kohya: dora_scale
        scales = [k for k in f.keys() if k.endswith(".dora_scale")]
        assert len(scales) == len(trained) and f.get_tensor(scales[0]).ndim == 2
        assert all(".to_" not in k for k in scales)  # module path in kohya's underscores


def test_epochs_and_repeats_give_the_step_count(tiny_model, photos, tmp_path):
    said = []
    result = train(_config(tiny_model, photos, tmp_path / "run", num_train_epochs=2, repeats=3,
                           train_batch_size=2, max_train_steps=400),
                   callbacks=[FunctionCallback(on_message=said.append)])
    n = 4  # the photos fixture
    assert len(result.history) == 2 * -(-n * 3 // 2) == 12
    assert any("num_train_epochs=2: 2 × 6 steps = 12 steps" in m for m in said), said
    assert json.loads((tmp_path / "run" / "config.json").read_text())["max_train_steps"] == 12
    # the one definition: class images count when there are more of them than photos × repeats
    assert epoch_length(4, 10, repeats=2) == 10 and epoch_length(4, 10, repeats=3) == 12
    cfg = TrainConfig(num_train_epochs=3, train_batch_size=2, gradient_accumulation_steps=2)
    assert steps_per_epoch(10, cfg) == 3 and resolve_epochs(cfg, 4, 10)[0].max_train_steps == 9


def test_cosine_with_restarts_restarts_and_polynomial_decays_by_its_power(tiny_model, photos,
                                                                         tmp_path):
    r = train(_config(tiny_model, photos, tmp_path / "a", lr_scheduler="cosine_with_restarts",
                      lr_num_cycles=2, max_train_steps=8), callbacks=[])
    lrs = [h["lr"] for h in r.history]
    # (the lr after each step) the first cycle falls over steps 1-4; the second starts high again
    assert lrs[0] > lrs[1] > lrs[2] and lrs[3] == pytest.approx(1e-3) and lrs[4] < lrs[3]
    p = train(_config(tiny_model, photos, tmp_path / "b", lr_scheduler="polynomial",
                      lr_power=2.0, max_train_steps=4), callbacks=[])
    lrs = [h["lr"] for h in p.history]
    # diffusers' polynomial decay to 1e-7: (lr - end) × (1 - step/total)^power + end
    for step, lr in zip(range(1, 5), lrs):
        assert lr == pytest.approx((1e-3 - 1e-7) * (1 - step / 4) ** 2 + 1e-7, rel=1e-4)


def test_the_attention_mask_hides_only_the_padding(tiny_model):
    from dreamkit.models.loading import _encode, load_components
    comps = load_components(str(tiny_model))
    with torch.no_grad():
        plain = _encode(comps.tokenizer, comps.text_encoder, ["a photo of toy"], "cpu")
        masked = _encode(comps.tokenizer, comps.text_encoder, ["a photo of toy"], "cpu", True)
    n = int(comps.tokenizer(["a photo of toy"], return_tensors="pt").attention_mask.sum())
    torch.testing.assert_close(plain[:, :n], masked[:, :n])  # CLIP is causal: the words agree
    assert not torch.allclose(plain[:, n:], masked[:, n:])  # the padding's states differ


def test_tensorboard_holds_the_losses_the_rate_and_the_sample_grids(tiny_model, photos,
                                                                     tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    train(_config(tiny_model, photos, tmp_path / "run", report_to="tensorboard",
                  with_prior_preservation=True, num_class_images=2, class_inference_steps=1,
                  sample_every=2, max_train_steps=4), callbacks=[])
    logs = tmp_path / "run" / "logs" / "dreamkit"
    acc = EventAccumulator(str(logs), size_guidance={"images": 0})
    acc.Reload()
    scalars = acc.Tags()["scalars"]
    for tag in ("loss", "instance_loss", "prior_loss", "lr"):
        assert tag in scalars, scalars
    assert [e.step for e in acc.Scalars("loss")] == [1, 2, 3, 4]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [e.value for e in acc.Scalars("loss")] == pytest.approx([h["loss"] for h in history])
    assert [e.step for e in acc.Images("samples")] == [2, 4]


def test_the_notebook_form_takes_the_knobs_on_both_paths(tiny_model, photos, tmp_path):
    from dreamkit.ui.notebook import notebook_config
    form = dict(identifier="zshq", class_noun="dog", steps=10, prior_preservation=False,
                prior_loss_weight=1.0, num_class_images=0, learning_rate=5e-6)
    knobs = {"snr_gamma": 5.0, "random_flip": True, "aspect_buckets": True}
    for on_gpu in (False, True):
        cfg = notebook_config(on_gpu, str(tiny_model), photos, tmp_path / "run", **form,
                              knobs=knobs)
        assert (cfg.snr_gamma, cfg.random_flip, cfg.aspect_buckets) == (5.0, True, True)
        assert cfg.max_train_steps == 10


def test_the_plan_counts_prodigys_and_doras_extra_states(tiny_model):
    from dreamkit.planning.planner import plan
    base = dict(pretrained_model_name_or_path=str(tiny_model), resolution=32,
                with_prior_preservation=True, num_class_images=2, class_noun="toy")
    adamw = plan(TrainConfig(**base), suggest=False)
    prodigy = plan(TrainConfig(**base, optimizer="prodigy", learning_rate=1.0), suggest=False)
    trained = sum(p.numel() for p in __import__("dreamkit").load_components(
        str(tiny_model)).unet.parameters())
    extra = (prodigy.total - adamw.total) * 2**30
    # s and p0 per weight in fp32, with the plan's slack on top (5%)
    assert 2 * 4 * trained <= extra <= 1.1 * 2 * 4 * trained
    lora = plan(TrainConfig(**base, use_lora=True, learning_rate=1e-4), suggest=False)
    dora = plan(TrainConfig(**base, use_lora=True, use_dora=True, learning_rate=1e-4),
                suggest=False)
    assert dora.total > lora.total


def test_docs_knobs_md_is_what_the_measurements_say(tmp_path, monkeypatch):
    """docs/knobs.md is written by benchmarks/knobs.py from its JSON files, never by hand."""
    import importlib.util
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("knobs_bench", root / "benchmarks" / "knobs.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "DOC", tmp_path / "knobs.md")
    bench.doc()
    assert (tmp_path / "knobs.md").read_text() == (root / "docs" / "knobs.md").read_text()
    rows = [line for line in (root / "docs" / "knobs.md").read_text().splitlines()
            if line.startswith("| ") and "0, 1, 2" in line]
    assert len(rows) == len(bench.KNOBS)  # every knob, three seeds each


def test_no_sample_grids_with_zero_sample_images(tiny_model, photos, tmp_path):
    """num_sample_images=0: no grid at the end (as diffusers' script without a validation
    prompt), the model saved all the same."""
    seen = []
    train(_config(tiny_model, photos, tmp_path / "run", num_sample_images=0, sample_every=1,
                  max_train_steps=2), callbacks=[FunctionCallback(on_samples=lambda *a:
                                                                  seen.append(a))])
    assert seen == [] and not (tmp_path / "run" / "samples").exists()
    assert (tmp_path / "run" / "model_index.json").is_file()
