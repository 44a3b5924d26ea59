"""Exports exact on every stack and loading advice that works: a LoRA of alpha != rank renders
the same through today's diffusers, a loader that ignores the file's header and the older stack
(diffusers 0.32, transformers 4.54, peft 0.14); every diffusers line `dreamkit export` prints runs
offline, for every combination of its flags on a LoRA run and a full run; names and metadata."""

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dreamkit import TrainConfig, train
from dreamkit.models.loading import build_pipeline, load_components, load_pipeline
from dreamkit.models.lora import LORA_WEIGHTS, kohya_files
from dreamkit.outputs.advice import loading_advice
from dreamkit.outputs.export import export_all
from dreamkit.outputs.sample import generate

OLD_STACK = Path(sys.prefix) / "oldstack"  # scripts/setup_env.sh installs it beside the venv


def _pixels(model) -> np.ndarray:
    images = generate(model, "a photo of sks toy", num_images=2, num_inference_steps=3, seed=7,
                      height=32, width=32, scheduler="ddim")
    return np.stack([np.asarray(im, dtype=np.float32) for im in images])


@pytest.fixture(scope="module")
def runs(tiny_model, tmp_path_factory):
    """A LoRA run (rank 4, alpha 8: the update is scaled 2x) with its live pictures, and a
    full run, both on the tiny model."""
    from dreamkit.testing import make_photos
    root = tmp_path_factory.mktemp("exports")
    make_photos(root / "photos", n=4, size=48)
    base = dict(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(root / "photos"),
                class_noun="toy", resolution=32, max_train_steps=4, learning_rate=1e-2,
                sample_steps=2, num_sample_images=1, checkpointing_steps=0)
    lora = train(TrainConfig(**base, output_dir=str(root / "my-dog"), use_lora=True,
                             lora_rank=4, lora_alpha=8, train_text_encoder=True), callbacks=[])
    live = _pixels(build_pipeline(load_components(str(tiny_model)), unet=lora.unet,
                                  text_encoder=lora.text_encoder))
    train(TrainConfig(**{**base, "learning_rate": 1e-3}, output_dir=str(root / "full")),
          callbacks=[])
    return root, live


def test_the_lora_file_is_exact_whether_or_not_the_loader_reads_its_header(runs, tiny_model,
                                                                          tmp_path):
    root, live = runs
    run = root / "my-dog"
    assert np.abs(_pixels(load_pipeline(str(run))) - live).max() <= 2.0  # today's loader
    with safe_open(str(run / LORA_WEIGHTS), "pt") as f:
        header = f.metadata()["lora_adapter_metadata"]
    meta = json.loads(header)
    assert meta["unet.lora_alpha"] == meta["unet.r"] == 4  # the 8/4 is in the weights now
    assert str(tiny_model) not in header  # no local path travels with a shared file
    bare = tmp_path / "bare"  # an older loader: the header is not read at all
    bare.mkdir()
    save_file(load_file(str(run / LORA_WEIGHTS)), str(bare / LORA_WEIGHTS))
    from_bare = _pixels(load_pipeline(str(tiny_model), lora=str(bare / LORA_WEIGHTS)))
    assert np.abs(from_bare - live).max() <= 2.0, np.abs(from_bare - live).max()


def test_the_older_stack_renders_the_lora_as_today(runs, tiny_model, tmp_path):
    if not (OLD_STACK / "diffusers").is_dir():
        pytest.skip(f"no older stack at {OLD_STACK}: scripts/setup_env.sh installs diffusers "
                    f"0.32.2, transformers 4.54 and peft 0.14 there")
    root, live = runs
    out = tmp_path / "old.npy"
    code = f"""
import numpy as np, torch, diffusers, transformers, peft
from diffusers import DDIMScheduler, StableDiffusionPipeline
assert diffusers.__version__ == "0.32.2" and transformers.__version__.startswith("4.54"), \\
    (diffusers.__version__, transformers.__version__)
pipe = StableDiffusionPipeline.from_pretrained({str(tiny_model)!r}, safety_checker=None)
pipe.load_lora_weights({str(root / 'my-dog')!r}, weight_name={LORA_WEIGHTS!r})
pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
gens = [torch.Generator("cpu").manual_seed(7 + k) for k in range(2)]
images = pipe(["a photo of sks toy"] * 2, num_inference_steps=3, generator=gens, height=32,
              width=32).images
np.save({str(out)!r}, np.stack([np.asarray(im, dtype=np.float32) for im in images]))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(OLD_STACK), "HF_HUB_OFFLINE": "1"},
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    old = np.load(out)
    assert np.abs(old - live).max() <= 2.0, np.abs(old - live).max()


def _flags(lora: bool):
    for single, half, no_diffusers in itertools.product((False, True), repeat=3):
        if half and not single:
            continue  # --half is the single file's precision
        if no_diffusers and not single and not lora:
            continue  # nothing to write: refused (tests/test_bad_inputs_commands.py)
        yield single, half, no_diffusers


@pytest.mark.parametrize("lora", [True, False], ids=["lora-run", "full-run"])
def test_every_printed_line_loads_the_export(lora, runs, tiny_model, tmp_path):
    """Each combination of --single_file, --half, --no_diffusers: the export, then every
    diffusers line of the advice run as printed; the pictures are the run's. A folder from a
    LoRA run is loaded as it is (the LoRA is in it), never with the LoRA put on again."""
    from diffusers import DiffusionPipeline, StableDiffusionPipeline
    root, live = runs
    run = root / ("my-dog" if lora else "full")
    expected = live if lora else _pixels(load_pipeline(str(run)))
    for n, (single, half, no_diffusers) in enumerate(_flags(lora)):
        out = tmp_path / f"export-{n}"
        written = export_all(run, out, single_file=single, half=half, diffusers=not no_diffusers)
        advice = loading_advice(out, written, run, str(tiny_model) if lora else None)
        code = [a for a in advice if a.code]
        assert code, advice
        for a in code:
            names = {"DiffusionPipeline": DiffusionPipeline,
                     "StableDiffusionPipeline": StableDiffusionPipeline}
            exec(a.text, names)  # noqa: S102 - the line as printed
            pipe = names["pipe"]
            got = _pixels(pipe)
            tol = 6.0 if half and a.tool == "one file" else 2.0
            assert np.abs(got - expected).max() <= tol, (a, single, half, no_diffusers)
        text = "\n".join(map(str, advice))
        if lora and not no_diffusers:
            assert "the LoRA is fused in" in text
            assert "load_lora_weights" not in [a.text for a in code if a.tool == "diffusers"][0]
        if single:
            assert "AUTOMATIC1111: model.safetensors into models/Stable-diffusion/" not in text
            assert "not Stable Diffusion 1.5's own shapes" in text  # the tiny model's shapes


def test_lora_files_are_named_after_the_run_with_kohyas_metadata(runs, tiny_model, tmp_path):
    root, _ = runs
    run = root / "my-dog"
    (kohya,) = kohya_files(run)
    assert kohya.name == "my-dog.safetensors"
    with safe_open(str(kohya), "pt") as f:
        meta = f.metadata()
    assert meta["ss_output_name"] == "my-dog" and meta["ss_sd_model_name"] == tiny_model.name
    assert meta["modelspec.resolution"] == "128x128"  # the tiny UNet's 16 latents x 8
    written = export_all(run, tmp_path / "e", diffusers=False, name="rex v2")
    renamed = [p for p in written if p.name not in (LORA_WEIGHTS,)]
    assert [p.name for p in renamed] == ["rex-v2.safetensors"]
    with safe_open(str(renamed[0]), "pt") as f:
        assert f.metadata()["ss_output_name"] == "rex-v2"
    text = "\n".join(map(str, loading_advice(tmp_path / "e", written, run, str(tiny_model))))
    assert "<lora:rex-v2:1>" in text and "models/loras/" in text


def test_sd2_768_and_a_base_path_in_kohya_metadata():
    from dreamkit.models.lora import kohya_metadata, model_name
    meta = kohya_metadata("sd_v2", 4, 4, {"model_size": 768, "base_model":
                                          "/content/drive/MyDrive/models/sd21/"}, "x")
    assert meta["modelspec.architecture"] == "stable-diffusion-v2-768-v/lora"
    assert meta["ss_sd_model_name"] == "sd21" and "/content" not in json.dumps(meta)
    assert kohya_metadata("sd_v2", 4, 4, {"model_size": 512}, "x")[
        "modelspec.architecture"] == "stable-diffusion-v2-512/lora"
    assert model_name("stable-diffusion-v1-5/stable-diffusion-v1-5") == "stable-diffusion-v1-5"
