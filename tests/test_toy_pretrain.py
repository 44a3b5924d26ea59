"""`dreamkit toy pretrain`, shortened: the full run takes ~50 min (benchmarks/RESULTS.md)."""

import json

import torch
from safetensors.torch import load_file

from dreamkit.ui.cli import main


def _short(out, seed=0):
    assert main(["toy", "pretrain", "--out", str(out), "--seed", str(seed), "--images", "64",
                 "--vae-steps", "2", "--unet-steps", "2"]) == 0


def test_pretrain_writes_a_reproducible_sd_folder(tmp_path):
    from diffusers import StableDiffusionPipeline
    _short(tmp_path / "a")
    _short(tmp_path / "b")
    for part in ("unet", "vae", "text_encoder"):
        name = "model.safetensors" if part == "text_encoder" else "diffusion_pytorch_model.safetensors"
        a, b = load_file(tmp_path / "a" / part / name), load_file(tmp_path / "b" / part / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), part
    log = json.loads((tmp_path / "a" / "pretrain_log.json").read_text())
    assert log["unet_steps"] == 2 and log["seconds"]["total"] > 0
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "a")
    assert pipe.tokenizer("a photo of sks toy on the beach").input_ids[1:-1] == \
        [pipe.tokenizer.convert_tokens_to_ids(w + "</w>") for w in "a photo of sks toy on the beach".split()]
    img = pipe("a photo of a red circle toy", num_inference_steps=2).images[0]
    assert img.size == (64, 64)
    assert not (tmp_path / "a" / "_tokenizer_src").exists()
