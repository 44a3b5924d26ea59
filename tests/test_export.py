"""Exports: the single-file original layout loads back through diffusers' own from_single_file
with the same weights and pictures; its key names match Stable Diffusion 1.5's."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from dreamkit import TrainConfig
from dreamkit.models.loading import load_pipeline
from dreamkit.outputs.export import (
    export_single_file,
    text_encoder_to_original,
    unet_to_original,
    vae_to_original,
)
from dreamkit.outputs.sample import generate
from dreamkit.ui.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "dreamkit" / "planning" / "configs"

# Names from the original SD 1.5 checkpoint (CompVis/LDM layout) that AUTOMATIC1111 and
# ComfyUI read; the full-size model must produce each of them, with these shapes.
SD15_KEYS = {
    "model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
    "model.diffusion_model.time_embed.0.weight": (1280, 320),
    "model.diffusion_model.input_blocks.1.0.in_layers.0.weight": (320,),
    "model.diffusion_model.input_blocks.1.0.emb_layers.1.weight": (320, 1280),
    "model.diffusion_model.input_blocks.1.1.proj_in.weight": (320, 320, 1, 1),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight": (320, 320),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight": (320, 768),
    "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.ff.net.0.proj.weight": (2560, 320),
    "model.diffusion_model.input_blocks.3.0.op.weight": (320, 320, 3, 3),
    "model.diffusion_model.input_blocks.4.0.skip_connection.weight": (640, 320, 1, 1),
    "model.diffusion_model.input_blocks.11.0.out_layers.3.weight": (1280, 1280, 3, 3),
    "model.diffusion_model.middle_block.0.in_layers.2.weight": (1280, 1280, 3, 3),
    "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_v.weight": (1280, 768),
    "model.diffusion_model.middle_block.2.out_layers.0.weight": (1280,),
    "model.diffusion_model.output_blocks.0.0.skip_connection.weight": (1280, 2560, 1, 1),
    "model.diffusion_model.output_blocks.2.1.conv.weight": (1280, 1280, 3, 3),
    "model.diffusion_model.output_blocks.5.2.conv.weight": (1280, 1280, 3, 3),
    "model.diffusion_model.output_blocks.8.2.conv.weight": (640, 640, 3, 3),
    "model.diffusion_model.output_blocks.11.1.proj_out.weight": (320, 320, 1, 1),
    "model.diffusion_model.out.0.weight": (320,),
    "model.diffusion_model.out.2.weight": (4, 320, 3, 3),
    "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
    "first_stage_model.encoder.down.0.block.0.conv1.weight": (128, 128, 3, 3),
    "first_stage_model.encoder.down.0.downsample.conv.weight": (128, 128, 3, 3),
    "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight": (256, 128, 1, 1),
    "first_stage_model.encoder.mid.attn_1.q.weight": (512, 512, 1, 1),
    "first_stage_model.encoder.mid.block_2.norm2.weight": (512,),
    "first_stage_model.encoder.norm_out.weight": (512,),
    "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight": (128, 256, 1, 1),
    "first_stage_model.decoder.up.3.upsample.conv.weight": (512, 512, 3, 3),
    "first_stage_model.decoder.up.3.block.2.conv2.weight": (512, 512, 3, 3),
    "first_stage_model.decoder.mid.attn_1.proj_out.weight": (512, 512, 1, 1),
    "first_stage_model.quant_conv.weight": (8, 8, 1, 1),
    "first_stage_model.post_quant_conv.weight": (4, 4, 1, 1),
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight": (49408, 768),
    "cond_stage_model.transformer.text_model.encoder.layers.11.mlp.fc2.weight": (768, 3072),
    "cond_stage_model.transformer.text_model.final_layer_norm.weight": (768,),
}


def test_full_size_sd15_gets_the_original_key_names():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    with torch.device("meta"):  # full size, no memory
        unet = UNet2DConditionModel.from_config(json.loads((CONFIGS / "sd15_unet.json").read_text()))
        vae = AutoencoderKL.from_config(json.loads((CONFIGS / "sd15_vae.json").read_text()))
        te = CLIPTextModel(CLIPTextConfig(**json.loads(
            (CONFIGS / "sd15_text_encoder.json").read_text())))
    u = unet_to_original(unet.state_dict(), unet.config)
    v = vae_to_original(vae.state_dict(), vae.config)
    t = text_encoder_to_original(te.state_dict())
    # SD 1.5's file: 686 UNet + 248 VAE + 196 text-encoder tensors (+ a position_ids buffer)
    assert (len(u), len(v), len(t)) == (686, 248, 196)
    state = {**u, **v, **t}
    for key, shape in SD15_KEYS.items():
        assert key in state, key
        assert tuple(state[key].shape) == shape, (key, state[key].shape)


def _pixels(pipe):
    images = generate(pipe, "a photo of sks toy", num_images=2, num_inference_steps=3, seed=3,
                      height=32, width=32, scheduler="ddim")
    return np.stack([np.asarray(im, dtype=np.float32) for im in images])


@pytest.mark.parametrize("half", [False, True])
def test_single_file_round_trip_through_from_single_file(half, tiny_model, tmp_path):
    from diffusers import StableDiffusionPipeline

    pipe = load_pipeline(str(tiny_model))
    path = export_single_file(pipe, tmp_path / "model.safetensors", half=half)
    with safe_open(str(path), "pt") as f:
        keys = list(f.keys())
        dtypes = {f.get_tensor(k).dtype for k in keys[:20]}
    assert {k.split(".")[0] for k in keys} == {"model", "first_stage_model", "cond_stage_model"}
    assert dtypes == ({torch.float16} if half else {torch.float32})
    # diffusers' own loader, offline: the local folder gives the configs
    back = StableDiffusionPipeline.from_single_file(str(path), config=str(tiny_model),
                                                    safety_checker=None,
                                                    torch_dtype=torch.float32)
    for part in ("unet", "vae", "text_encoder"):
        a, b = getattr(pipe, part).state_dict(), getattr(back, part).state_dict()
        assert a.keys() == b.keys(), part
        tol = 1e-3 if half else 0
        worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
        assert worst <= tol * max(1, max(a[k].abs().max().item() for k in a)), (part, worst)
    diff = np.abs(_pixels(pipe) - _pixels(back)).max()
    assert diff <= (3.0 if half else 0.0), diff


def test_export_cli_writes_the_files_a_lora_run_and_a_full_run_need(tiny_model, tmp_path, capsys):
    out = tmp_path / "exports"
    assert main(["export", str(tiny_model), "--out", str(out), "--single_file", "--half"]) == 0
    text = capsys.readouterr().out
    assert (out / "model_index.json").is_file() and (out / "model.safetensors").is_file()
    assert "model.safetensors" in text and "from_single_file" in text
    assert main(["export", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "missing" in capsys.readouterr().err


def test_push_to_hub_writes_a_card_and_never_the_token(tiny_model, tmp_path, monkeypatch,
                                                       capsys):
    import huggingface_hub

    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("token", token))

        def create_repo(self, repo_id, private, exist_ok):
            calls.append(("create", repo_id, private))
            return f"https://hub.example/{repo_id}"

        def upload_folder(self, repo_id, folder_path, ignore_patterns):
            calls.append(("upload", repo_id, sorted(p.name for p in Path(folder_path).iterdir())))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value_123")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({
        "pretrained_model_name_or_path": str(tiny_model), "identifier": "zwx",
        "class_noun": "dog", "max_train_steps": 400}))
    out = tmp_path / "export"
    out.mkdir()
    (out / "config.json").write_text((run / "config.json").read_text())
    from dreamkit.outputs.hub import push_to_hub
    url = push_to_hub(out, "me/my-dog")
    assert url.endswith("me/my-dog")
    assert ("token", "hf_secret_value_123") in calls and ("create", "me/my-dog", True) in calls
    assert "README.md" in calls[-1][2]
    card = (out / "README.md").read_text()
    assert "a photo of zwx dog" in card and "max_train_steps | 400" in card
    assert "from_pretrained('me/my-dog')" in card
    everything = capsys.readouterr().out + "".join(p.read_text(errors="ignore")
                                                  for p in out.rglob("*") if p.is_file())
    assert "hf_secret_value_123" not in everything
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(Exception, match="HF_HUB_OFFLINE=1"):
        push_to_hub(out, "me/my-dog")


def test_broken_lora_and_non_model_folders_fail_with_one_line(tiny_model, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    code = main(["generate", str(tiny_model), "--prompt", "a toy", "--num_images", "1",
                 "--steps", "2", "--lora", str(bad), "--out", str(tmp_path / "g")])
    err = capsys.readouterr().err
    assert code == 2 and "lora=" in err and "could not be loaded" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", str(empty), "--out", str(tmp_path / "x")]) == 2
    assert "model_index.json" in capsys.readouterr().err


def test_model_card_names_every_subject(tmp_path):
    from dreamkit.outputs.hub import model_card
    TrainConfig(class_noun="dog", output_dir=str(tmp_path), concepts=[
        {"instance_dir": "photos/rex", "identifier": "zwx"},
        {"instance_dir": "photos/tom", "identifier": "hwq", "class_noun": "cat",
         "instance_prompt": "a {token} {class} portrait"}]).save(tmp_path / "config.json")
    card = model_card(tmp_path, "me/pets")
    assert "2 subject(s)" in card and "instance_prompt: a photo of zwx dog" in card
    assert "**zwx** names the dog of `rex`" in card and "*\"a photo of zwx dog\"*" in card
    assert "**hwq** names the cat of `tom`" in card and "*\"a hwq cat portrait\"*" in card


def _meta_lora_state(unet_config: dict, text_config: dict | None = None) -> dict:
    """A diffusers LoRA state dict of a full-size model, on the meta device (no weights)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from dreamkit.models.lora import (
        TEXT_ENCODER_TARGETS,
        UNET_TARGETS,
        add_lora,
        lora_state,
    )
    from dreamkit.models.portable import lora_hub_names
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(unet_config)
        add_lora(unet, 4, 4, UNET_TARGETS)
        state = {f"unet.{k}": v for k, v in lora_state(unet).items()}
        if text_config:
            te = CLIPTextModel(CLIPTextConfig(**{k: v for k, v in text_config.items()
                                                 if not k.startswith("_")}))
            add_lora(te, 4, 4, TEXT_ENCODER_TARGETS)
            state.update({f"text_encoder.{k}": v for k, v in lora_state(te).items()})
    return lora_hub_names(state)


def _expected(modules) -> set:
    return {f"{m}.{s}" for m in modules for s in ("lora_down.weight", "lora_up.weight", "alpha")}


def _config(name):
    import importlib.resources
    return json.loads(importlib.resources.files("dreamkit.planning").joinpath(f"configs/{name}").read_text())


def test_kohya_names_follow_kohyas_rules_for_sd15_and_sdxl_at_full_size():
    """Every key of the kohya file is a name kohya's networks give that architecture:
    SD 1.x keeps diffusers' block names, SDXL uses the original ones (1680 keys, 560 layers)."""
    from dreamkit.models.lora import kohya_state
    attn = [f"attn{a}_{p}" for a in (1, 2) for p in ("to_q", "to_k", "to_v", "to_out_0")]
    # SD 1.5: one transformer block per attention; the UNet's and the text encoder's layers
    blocks = [f"down_blocks_{i}_attentions_{j}" for i in range(3) for j in range(2)] + \
        [f"up_blocks_{i}_attentions_{j}" for i in (1, 2, 3) for j in range(3)] + \
        ["mid_block_attentions_0"]
    sd15 = [f"lora_unet_{b}_transformer_blocks_0_{a}" for b in blocks for a in attn] + \
        [f"lora_te_text_model_encoder_layers_{i}_self_attn_{p}_proj" for i in range(12)
         for p in ("q", "k", "v", "out")]
    got = kohya_state(_meta_lora_state(_config("sd15_unet.json"),
                                       _config("sd15_text_encoder.json")),
                      {"unet": 4, "text_encoder": 4}, _config("sd15_unet.json"))
    assert set(got) == _expected(sd15) and len(got) == 3 * (128 + 48)
    # SDXL base: transformer depth 2 (input 4, 5; output 3-5) and 10 (input 7, 8; middle;
    # output 0-2), in the original layout
    depth = {"input_blocks_4_1": 2, "input_blocks_5_1": 2, "input_blocks_7_1": 10,
             "input_blocks_8_1": 10, "middle_block_1": 10, **{f"output_blocks_{i}_1": 10
                                                              for i in (0, 1, 2)},
             **{f"output_blocks_{i}_1": 2 for i in (3, 4, 5)}}
    sdxl = [f"lora_unet_{b}_transformer_blocks_{t}_{a}" for b, n in depth.items()
            for t in range(n) for a in attn]
    got = kohya_state(_meta_lora_state(_config("sdxl_unet.json")), {"unet": 4},
                      _config("sdxl_unet.json"))
    assert set(got) == _expected(sdxl) and len(sdxl) == 560 and len(got) == 1680


def _hub_text_encoder_names(layers: int) -> set:
    """The key names of the Hub's SD 1.5 text encoder (text_encoder/model.safetensors), for a
    CLIPTextModel with `layers` layers (SD 1.5: 12, 196 tensors)."""
    parts = [f"{n}.{w}" for n in ("layer_norm1", "layer_norm2", "mlp.fc1", "mlp.fc2",
                                  "self_attn.k_proj", "self_attn.q_proj", "self_attn.v_proj",
                                  "self_attn.out_proj") for w in ("weight", "bias")]
    return {"text_model.embeddings.position_embedding.weight",
            "text_model.embeddings.token_embedding.weight",
            "text_model.final_layer_norm.weight", "text_model.final_layer_norm.bias"} | \
        {f"text_model.encoder.layers.{i}.{p}" for i in range(layers) for p in parts}


def test_exported_folder_uses_the_hubs_names_and_files_older_releases_read(tiny_model,
                                                                            tmp_path, capsys):
    """transformers 4.x loads a text encoder by the Hub's key names (text_model.*) and its
    CLIPTokenizer from vocab.json + merges.txt; files are readable by other users."""
    from transformers import CLIPTokenizer, CLIPTokenizerFast
    assert len(_hub_text_encoder_names(12)) == 196  # the SD 1.5 text encoder's tensor count
    out = tmp_path / "export"
    assert main(["export", str(tiny_model), "--out", str(out), "--single_file"]) == 0
    with safe_open(str(out / "text_encoder" / "model.safetensors"), "pt") as f:
        layers = json.loads((out / "text_encoder" / "config.json").read_text())
        assert set(f.keys()) == _hub_text_encoder_names(layers["num_hidden_layers"])
    tok = out / "tokenizer"
    slow = CLIPTokenizer(str(tok / "vocab.json"), str(tok / "merges.txt"))  # the old way
    fast = CLIPTokenizerFast.from_pretrained(str(tok))
    for text in ("a photo of sks toy on the beach", "qwzxq"):
        assert slow(text).input_ids == fast(text).input_ids, text
    mask = os.umask(0)
    os.umask(mask)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert files and all(p.stat().st_mode & 0o777 == 0o666 & ~mask for p in files)
    text = capsys.readouterr().out  # the advice that works offline, and honest
    assert f"from_single_file({str(out / 'model.safetensors')!r}, config={str(out)!r})" in text
    assert "not Stable Diffusion 1.5's own shapes" in text  # tiny: not SD 1.5 shapes
    assert "models/Stable-diffusion" not in text


def test_single_file_of_sdxl_is_refused_before_anything_is_written(tmp_path, capsys):
    from dreamkit.testing import make_tiny_sdxl
    model = make_tiny_sdxl(tmp_path / "xl")
    out = tmp_path / "export"
    assert main(["export", str(model), "--out", str(out), "--single_file"]) == 2
    err = capsys.readouterr().err
    assert "--single_file: SDXL is not converted to one file here" in err and "diffusers" in err
    assert not out.exists()
