"""SDXL DreamBooth LoRA on a tiny SDXL built offline: two text encoders, the time ids, prior
preservation in both step modes, the LoRA loaded back by diffusers, a separate VAE."""

import numpy as np
import pytest
import torch

from dreamkit import DreamkitError, TrainConfig, train
from dreamkit.models.loading import build_pipeline, load_components, load_pipeline
from dreamkit.models.lora import LORA_WEIGHTS
from dreamkit.models.sdxl import added_cond, encode_sdxl
from dreamkit.outputs.sample import generate


@pytest.fixture(scope="module")
def tiny_sdxl(tmp_path_factory):
    from dreamkit.testing import make_tiny_sdxl
    return make_tiny_sdxl(tmp_path_factory.mktemp("models") / "tiny-sdxl")


def _config(model, photos, out, **kw):
    base = dict(pretrained_model_name_or_path=str(model), instance_dir=str(photos),
                class_noun="toy", with_prior_preservation=True, num_class_images=2,
                sample_batch_size=2, class_inference_steps=2, resolution=32, max_train_steps=3,
                learning_rate=1e-2, output_dir=str(out), sample_steps=2, num_sample_images=1,
                checkpointing_steps=0, use_lora=True, lora_rank=4)
    base.update(kw)
    return TrainConfig(**base)


def test_sdxl_conditions_have_the_pipelines_shapes(tiny_sdxl):
    comps = load_components(str(tiny_sdxl))
    assert comps.is_sdxl
    cache = {}
    states, pooled = encode_sdxl(comps, ["a photo of sks toy", "a photo of toy"], "cpu", cache)
    pipe = build_pipeline(comps)
    ref, _, ref_pooled, _ = pipe.encode_prompt("a photo of sks toy", device="cpu",
                                               do_classifier_free_guidance=False)
    assert states.shape == (2, 77, 64) and pooled.shape == (2, 32)
    assert torch.allclose(states[:1], ref, atol=1e-5) and torch.allclose(pooled[:1], ref_pooled,
                                                                        atol=1e-5)
    ids = added_cond(comps, ["a", "b", "c"], "cpu", cache, 32)["time_ids"]
    assert ids.tolist() == [[32, 32, 0, 0, 32, 32]] * 3


@pytest.mark.parametrize("mode", ["one_pass", "two_pass"])
def test_sdxl_lora_trains_with_prior_and_loads_back(mode, tiny_sdxl, photos, tmp_path):
    result = train(_config(tiny_sdxl, photos, tmp_path / "run", step_mode=mode), callbacks=[])
    run = tmp_path / "run"
    assert result.step_mode == mode and all(h["prior_loss"] is not None for h in result.history)
    assert (run / LORA_WEIGHTS).is_file() and (run / "run.safetensors").is_file()
    comps = load_components(str(tiny_sdxl))
    kw = dict(num_images=1, num_inference_steps=3, seed=1, height=32, width=32,
              scheduler="ddim")
    live = generate(build_pipeline(comps, unet=result.unet), "a photo of sks toy", **kw)[0]
    loaded_pipe = load_pipeline(str(run))
    assert type(loaded_pipe).__name__ == "StableDiffusionXLPipeline"
    loaded = generate(loaded_pipe, "a photo of sks toy", **kw)[0]
    diff = np.abs(np.asarray(live, dtype=float) - np.asarray(loaded, dtype=float)).max()
    assert diff <= 2.0, diff
    from safetensors import safe_open
    with safe_open(str(run / "run.safetensors"), "pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0"  # AUTOMATIC1111 files it as SDXL
    # kohya's SDXL networks use the original block names, not diffusers' (down_blocks_...)
    assert keys and all(k.startswith(("lora_unet_input_blocks_", "lora_unet_middle_block_",
                                      "lora_unet_output_blocks_")) for k in keys), keys[:3]
    kohya = generate(load_pipeline(str(tiny_sdxl), lora=str(run / "run.safetensors")),
                     "a photo of sks toy", **kw)[0]
    assert np.abs(np.asarray(kohya, dtype=float) - np.asarray(loaded, dtype=float)).max() <= 2.0


def test_sdxl_text_encoder_training_is_refused_with_the_fix(tiny_sdxl, photos, tmp_path):
    with pytest.raises(DreamkitError, match="train_text_encoder=False"):
        train(_config(tiny_sdxl, photos, tmp_path / "run", train_text_encoder=True),
              callbacks=[])


def test_separate_vae_replaces_the_models_own(tiny_sdxl, tmp_path):
    from dreamkit.testing import make_tiny_sdxl
    other = make_tiny_sdxl(tmp_path / "other", seed=1)
    comps = load_components(str(tiny_sdxl), vae_path=str(other / "vae"))
    want = load_components(str(other)).vae.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in comps.vae.state_dict().items())
    assert TrainConfig(pretrained_vae_model_name_or_path=str(other / "vae"))
