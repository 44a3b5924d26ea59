"""LoRA DreamBooth on the tiny model: training in both step modes with prior preservation, the
diffusers file and the kohya file loaded back by diffusers' own loader, same pictures."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open

from dreamkit import TrainConfig, train
from dreamkit.core.errors import ModelError
from dreamkit.models.loading import build_pipeline, load_components, load_pipeline
from dreamkit.models.lora import LORA_WEIGHTS, is_lora_run
from dreamkit.outputs.sample import generate


def _config(tiny_model, photos, out, **kw):
    base = dict(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                class_noun="toy", with_prior_preservation=True, num_class_images=3,
                sample_batch_size=3, class_inference_steps=2, resolution=32, max_train_steps=4,
                learning_rate=1e-2, output_dir=str(out), sample_steps=2, num_sample_images=1,
                checkpointing_steps=0, use_lora=True, lora_rank=4, lora_alpha=8)
    base.update(kw)
    return TrainConfig(**base)


def _pixels(model, **kw):
    images = generate(model, "a photo of sks toy", num_images=2, num_inference_steps=3, seed=7,
                      height=32, width=32, scheduler="ddim", **kw)  # build_pipeline's sampler
    return np.stack([np.asarray(im, dtype=np.float32) for im in images])


@pytest.mark.parametrize("mode", ["one_pass", "two_pass"])
def test_lora_trains_with_prior_and_saves_small_files(mode, tiny_model, photos, tmp_path):
    base_unet = load_components(str(tiny_model)).unet.state_dict()
    result = train(_config(tiny_model, photos, tmp_path / "run", step_mode=mode,
                           train_text_encoder=True), callbacks=[])
    out = tmp_path / "run"
    assert result.step_mode == mode and len(result.history) == 4
    assert all(h["prior_loss"] is not None for h in result.history)
    assert is_lora_run(out) and not (out / "unet").exists()
    # the frozen weights did not move; the adapters did
    unet = result.unet
    frozen = {k.replace(".base_layer", ""): v for k, v in unet.state_dict().items()
              if "lora_" not in k}
    assert all(torch.equal(frozen[k], v) for k, v in base_unet.items())
    lora_b = [v for k, v in unet.state_dict().items() if "lora_B" in k]
    assert lora_b and all(v.dtype == torch.float32 for v in lora_b)
    with safe_open(str(out / LORA_WEIGHTS), "pt") as f:
        keys = list(f.keys())
    assert any(k.startswith("unet.") for k in keys) and any(k.startswith("text_encoder.")
                                                           for k in keys)
    assert (out / LORA_WEIGHTS).stat().st_size < 0.2 * sum(
        p.stat().st_size for p in (tiny_model / "unet").glob("*.safetensors"))


@pytest.fixture(scope="module")
def lora_run(tiny_model, tmp_path_factory):
    from dreamkit.testing import make_photos
    root = tmp_path_factory.mktemp("lora")
    make_photos(root / "photos", n=4, size=48)
    result = train(_config(tiny_model, root / "photos", root / "run", train_text_encoder=True,
                           max_train_steps=6), callbacks=[])
    return root / "run", result


def test_saved_lora_renders_like_the_trained_model(lora_run, tiny_model):
    run, result = lora_run
    comps = load_components(str(tiny_model))
    live = build_pipeline(comps, unet=result.unet, text_encoder=result.text_encoder)
    expected = _pixels(live)
    loaded = _pixels(load_pipeline(str(run)))  # base from config.json + load_lora_weights
    base = _pixels(load_pipeline(str(tiny_model)))
    assert np.abs(loaded - expected).max() <= 2.0, np.abs(loaded - expected).max()
    assert np.abs(base - expected).mean() > 1.0  # the LoRA changes the picture


def test_kohya_file_has_the_tools_key_names_and_loads(lora_run, tiny_model):
    run, _ = lora_run
    kohya = run / "run.safetensors"  # named after the run folder (AUTOMATIC1111: <lora:run:1>)
    with safe_open(str(kohya), "pt") as f:
        keys = list(f.keys())
        alphas = {k: f.get_tensor(k).item() for k in keys if k.endswith(".alpha")}
    assert keys and all(k.startswith(("lora_unet_", "lora_te_")) for k in keys)
    assert any(k.startswith("lora_te_text_model_encoder_layers_0_self_attn_q_proj.")
               for k in keys)
    assert any("lora_unet_down_blocks_" in k and "_attn1_to_q.lora_down.weight" in k
               for k in keys)
    downs = [k for k in keys if k.endswith(".lora_down.weight")]
    assert len(downs) == len(alphas) == len([k for k in keys if k.endswith(".lora_up.weight")])
    assert set(alphas.values()) == {8.0}  # lora_alpha, not diffusers' default (the rank)
    with safe_open(str(kohya), "pt") as f:
        meta = f.metadata()
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_v2"] == "False"
    assert meta["ss_network_module"] == "networks.lora" and meta["ss_network_dim"] == "4"
    assert meta["ss_network_alpha"] == "8.0" and meta["ss_resolution"] == "(32, 32)"
    assert meta["ss_sd_model_name"] == tiny_model.name and meta["ss_max_train_steps"] == "6"
    for f in (kohya, run / "pytorch_lora_weights.safetensors"):
        assert oct(f.stat().st_mode & 0o777) == oct(0o666 & ~_umask()), f  # others can read
    with safe_open(str(run / "pytorch_lora_weights.safetensors"), "pt") as f:
        te = [k for k in f.keys() if k.startswith("text_encoder")]
    # the Hub's names: older diffusers index the text encoder's layers through text_model
    assert te and all(k.startswith("text_encoder.text_model.encoder.layers.") for k in te)
    from_kohya = _pixels(load_pipeline(str(tiny_model), lora=str(kohya)))
    from_diffusers = _pixels(load_pipeline(str(run)))
    assert np.abs(from_kohya - from_diffusers).max() <= 2.0


def _umask() -> int:
    import os
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_lora_run_without_its_config_asks_for_the_base(lora_run, tmp_path):
    run, _ = lora_run
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / LORA_WEIGHTS).write_bytes((run / LORA_WEIGHTS).read_bytes())
    with pytest.raises(ModelError, match="no config.json naming its base model; pass base="):
        load_pipeline(str(bare))


def test_lora_settings_are_checked():
    with pytest.raises(Exception, match="lora_rank"):
        TrainConfig(lora_rank=0)
    with pytest.raises(Exception, match="lora_target_modules"):
        TrainConfig(lora_target_modules="to_q")
    saved = json.loads(TrainConfig(use_lora=True).to_json())
    assert saved["use_lora"] is True and saved["lora_rank"] == 4


def test_export_of_a_lora_run_bakes_it_in_and_keeps_the_files(lora_run, tmp_path):
    from diffusers import StableDiffusionPipeline

    from dreamkit.outputs.export import export_all

    run, _ = lora_run
    out = tmp_path / "export"
    written = export_all(run, out, single_file=True)
    assert {p.name for p in written} == {LORA_WEIGHTS, "run.safetensors",
                                         "model_index.json", "model.safetensors"}
    expected = _pixels(load_pipeline(str(run)))
    fused = _pixels(load_pipeline(str(out)))  # a plain diffusers folder now
    single = _pixels(StableDiffusionPipeline.from_single_file(
        str(out / "model.safetensors"), config=str(out), safety_checker=None))
    assert np.abs(fused - expected).max() <= 2.0 and np.abs(single - fused).max() <= 1.0


def test_generate_cli_sampler_metadata_and_before_after(lora_run, tmp_path, capsys):
    from PIL import Image

    from dreamkit.ui.cli import main

    run, _ = lora_run
    out = tmp_path / "gen"
    assert main(["generate", str(run), "--prompt", "a photo of sks toy", "--num_images", "2",
                 "--steps", "3", "--height", "32", "--width", "32", "--scheduler", "dpm++",
                 "--negative_prompt", "blurry", "--seed", "5", "--compare_base",
                 "--out", str(out)]) == 0
    pngs = sorted(out.glob("a_photo_of_sks_toy_*.png"))
    assert len(pngs) == 2
    info = Image.open(pngs[1]).text
    assert info["prompt"] == "a photo of sks toy" and info["seed"] == "6"
    assert info["scheduler"] == "dpm++" and info["negative_prompt"] == "blurry"
    w, h = Image.open(out / "before_after.png").size
    assert 64 <= h <= 70 and w > h + 20  # 2×2 pictures, thin gaps, "base"/"fine-tuned" left
    assert "before_after.png" in capsys.readouterr().out
    for name in ("euler_a", "ddim"):  # the samplers give different pictures at one seed
        assert main(["generate", str(run), "--prompt", "a photo of sks toy", "--num_images", "1",
                     "--steps", "3", "--height", "32", "--width", "32", "--scheduler", name,
                     "--out", str(tmp_path / name)]) == 0
    a, b = (np.asarray(Image.open(next((tmp_path / n).glob("a_photo*.png"))), dtype=float)
            for n in ("euler_a", "ddim"))
    assert np.abs(a - b).mean() > 0.5


@pytest.mark.parametrize("lora", [True, False])
def test_grid_across_checkpoints(lora, tiny_model, photos, tmp_path):
    from dreamkit.outputs.sample import checkpoint_grid

    run = tmp_path / "run"
    train(_config(tiny_model, photos, run, use_lora=lora, checkpointing_steps=2,
                  checkpoints_total_limit=0, keep_checkpoints=True,
                  learning_rate=1e-2 if lora else 1e-3),
          callbacks=[])
    kw = dict(num_inference_steps=3, height=32, width=32, scheduler="ddim", seed=4)
    grid, labels = checkpoint_grid(run, "a photo of sks toy", num_images=2, **kw)
    assert labels == ["step 2", "step 4", "final"]
    assert grid.size[1] > 3 * 32 and grid.size[0] > 2 * 32
    x0 = grid.size[0] - (2 * 32 + 2)  # the cells start after the column of row labels
    assert x0 > 20  # "step 2", "step 4", "final" written in the picture
    cells = [np.asarray(grid.crop((x0, r * 34, x0 + 32, r * 34 + 32)), dtype=float)
             for r in range(3)]
    final = np.asarray(generate(load_pipeline(str(run)), "a photo of sks toy", num_images=1,
                                **kw)[0], dtype=float)
    assert np.abs(cells[2] - final).max() <= 1.0  # the last row is the final model
    assert np.abs(cells[1] - final).max() <= 2.0  # step 4 is the final step
    assert np.abs(cells[0] - cells[1]).mean() > 0.5  # step 2 is another model


def test_export_cli_takes_a_lora_run(lora_run, tmp_path, capsys):
    from dreamkit.ui.cli import main

    run, _ = lora_run
    assert main(["export", str(run), "--out", str(tmp_path / "e")]) == 0
    text = capsys.readouterr().out
    assert "weight_name='pytorch_lora_weights.safetensors'" in text
    assert (tmp_path / "e" / "model_index.json").is_file()
    assert (tmp_path / "e" / "run.safetensors").is_file()
