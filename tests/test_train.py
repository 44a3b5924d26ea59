import json

import pytest
import torch

from dreamkit import DreamkitError, FunctionCallback, TrainConfig
from dreamkit.models.loading import load_components
from dreamkit.planning.planner import plan
from dreamkit.training.loop import train
from dreamkit.training.step import (
    choose_step_mode,
    dreambooth_backward,
    mode_from_peaks,
)


def _grads(unet):
    return torch.cat([p.grad.flatten() for p in unet.parameters()])


@pytest.mark.parametrize("model_fixture", ["tiny_model", "tiny_vpred_model"])
def test_one_pass_and_two_pass_give_the_same_gradient(model_fixture, request):
    comps = load_components(str(request.getfixturevalue(model_fixture)))
    unet, sched = comps.unet, comps.noise_scheduler
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(4, 4, 16, 16, generator=g)  # 2 instance + 2 class rows
    noise = torch.randn(4, 4, 16, 16, generator=g)
    timesteps = torch.randint(0, 1000, (4,), generator=g)
    text = torch.randn(4, 77, 32, generator=g)
    out = {}
    for mode in ("one_pass", "two_pass"):
        unet.zero_grad(set_to_none=True)
        losses = dreambooth_backward(unet, sched, latents, text, noise, timesteps, n_instance=2,
                                     prior_loss_weight=0.7, mode=mode)
        out[mode] = (_grads(unet), losses)
    g1, l1 = out["one_pass"]
    g2, l2 = out["two_pass"]
    assert g1.norm() > 0
    rel = ((g1 - g2).norm() / g1.norm()).item()
    assert rel <= 1e-5, rel
    assert abs(l1.loss - l2.loss) < 1e-5 and abs(l1.prior_loss - l2.prior_loss) < 1e-5
    assert abs(l1.loss - (l1.instance_loss + 0.7 * l1.prior_loss)) < 1e-5


def test_prior_weight_changes_the_gradient(tiny_model):
    comps = load_components(str(tiny_model))
    g = torch.Generator().manual_seed(1)
    args = [torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 77, 32, generator=g),
            torch.randn(2, 4, 16, 16, generator=g), torch.tensor([10, 900])]
    grads = []
    for w in (0.0, 1.0):
        comps.unet.zero_grad(set_to_none=True)
        dreambooth_backward(comps.unet, comps.noise_scheduler, *args, n_instance=1,
                            prior_loss_weight=w, mode="two_pass")
        grads.append(_grads(comps.unet))
    assert (grads[0] - grads[1]).norm() > 1e-3 * grads[1].norm()


def _config(tiny_model, photos, tmp_path, **kw):
    base = dict(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                class_noun="toy", with_prior_preservation=True, num_class_images=3, sample_batch_size=3,
                class_inference_steps=2, resolution=32, max_train_steps=4, learning_rate=1e-3,
                output_dir=str(tmp_path / "run"), sample_steps=2, num_sample_images=1,
                sample_every=2)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("mode", ["one_pass", "two_pass"])
def test_training_with_prior_writes_a_loadable_model(mode, tiny_model, photos, tmp_path):
    from diffusers import DiffusionPipeline

    seen, samples = [], []
    cfg = _config(tiny_model, photos, tmp_path, step_mode=mode)
    result = train(cfg, callbacks=[FunctionCallback(on_step=seen.append,
                                                    on_samples=lambda s, i, p: samples.append(s))])
    assert result.step_mode == mode
    assert [i.step for i in seen] == [1, 2, 3, 4]
    assert all(i.prior_loss is not None and i.prior_loss > 0 for i in seen)
    assert samples == [2, 4]
    run = tmp_path / "run"
    assert len(list((run / "class_images").glob("*.png"))) == 3
    assert json.loads((run / "config.json").read_text())["step_mode"] == mode
    assert len(json.loads((run / "history.json").read_text())) == 4
    assert (run / "loss.png").stat().st_size > 1000
    assert (run / "samples" / "step_00004.png").exists()
    # The weights moved, and the saved folder loads with plain diffusers and draws 32x32 images.
    base = load_components(str(tiny_model)).unet.state_dict()
    moved = max((result.unet.state_dict()[k] - v).abs().max().item() for k, v in base.items())
    assert moved > 1e-4
    pipe = DiffusionPipeline.from_pretrained(str(result.model_dir))
    img = pipe("a photo of sks toy", num_inference_steps=2, height=32, width=32,
               generator=torch.Generator().manual_seed(0)).images[0]
    assert img.size == (32, 32)
    reloaded = pipe.unet.state_dict()
    assert all(torch.equal(reloaded[k], v) for k, v in result.unet.state_dict().items())


def test_same_seed_same_weights_and_without_prior(tiny_model, photos, tmp_path):
    a = train(_config(tiny_model, photos, tmp_path / "a", with_prior_preservation=False,
                      sample_every=0), callbacks=[])
    b = train(_config(tiny_model, photos, tmp_path / "b", with_prior_preservation=False,
                      sample_every=0), callbacks=[])
    assert all(h["prior_loss"] is None for h in a.history)
    assert not (tmp_path / "a" / "run" / "class_images").exists()
    sa, sb = a.unet.state_dict(), b.unet.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_output_dir_with_a_model_is_not_overwritten(tiny_model, photos, tmp_path):
    cfg = _config(tiny_model, photos, tmp_path, with_prior_preservation=False, max_train_steps=1,
                  sample_every=0)
    train(cfg, callbacks=[])
    marker = (tmp_path / "run" / "model_index.json").read_text()
    with pytest.raises(DreamkitError, match="already holds a trained model.*--overwrite"):
        train(cfg, callbacks=[])
    assert (tmp_path / "run" / "model_index.json").read_text() == marker


def test_auto_step_mode_rules_and_numbers():
    # rules that need no numbers
    assert choose_step_mode(TrainConfig(step_mode="two_pass"))[0] == "two_pass"
    assert choose_step_mode(TrainConfig(step_mode="auto")) == \
        ("one_pass", "no prior preservation: there is only one batch")
    mode, why = choose_step_mode(TrainConfig(with_prior_preservation=True))
    assert mode == "one_pass" and "without a memory plan" in why and "plan=" in why
    # from peaks: two passes only for a saving of 5% or more, with the figures
    mode, why = mode_from_peaks(10.0, 9.0)
    assert mode == "two_pass" and "10%" in why and "10.00 GiB" in why and "9.00 GiB" in why
    mode, why = mode_from_peaks(10.0, 9.6)
    assert mode == "one_pass" and "4%" in why and "faster" in why
    assert mode_from_peaks(7.0, 8.0) == ("one_pass", "two passes would raise the peak by 14% "
                                          "(peak 7.00 GiB in one pass, 8.00 GiB in two), and "
                                          "one pass is ~15% faster")


def test_train_follows_the_plans_step_mode(tiny_model, photos, tmp_path):
    """The planner measures both modes of the actual config (tiny UNet at 128 px: activations
    dominate, so two passes lower the peak by ~9%); train() with that plan runs that mode."""
    cfg = _config(tiny_model, photos, tmp_path, step_mode="auto", max_train_steps=1,
                  sample_every=0, resolution=128)
    memory = plan(cfg, suggest=False)
    assert memory.step_mode == "two_pass", memory.step_mode_reason
    assert "lower the peak by" in memory.step_mode_reason and "GiB" in memory.step_mode_reason
    result = train(cfg, callbacks=[], plan=memory)
    assert (result.step_mode, result.step_mode_reason) == (memory.step_mode,
                                                         memory.step_mode_reason)
