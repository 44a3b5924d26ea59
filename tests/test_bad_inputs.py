"""Every bad input in docs/bad-inputs.md: one line naming the setting, the value and the fix.

Each case sets up what a user might bring, runs `dreamkit train` (the CLI, in process), and
checks the outcome: either exit code 2 with a single-line message holding the expected words
(no traceback), or a run that works and says what it did about the input. Nothing the user had
on disk may be changed by a refused run.
"""

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dreamkit.ui.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-inputs.md"


def _png_header_only(path, w, h):
    """A small PNG whose header claims w×h pixels: a decompression bomb."""
    Image.new("RGB", (8, 8)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", w, h)  # IHDR width and height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # keep the chunk's CRC valid
    path.write_bytes(bytes(data))


def _photo(path, mode="RGB", size=(48, 48), **save):
    arr = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr).convert(mode) if mode != "I;16" else \
        Image.fromarray(arr[..., 0].astype(np.uint16) * 200)
    img.save(path, **save)


def _float_tiff(path, top):
    """A 32-bit float greyscale TIFF (a scan or an HDR export) under a .png name."""
    arr = np.random.default_rng(0).random((48, 48)).astype(np.float32) * top
    Image.fromarray(arr, "F").save(path, format="TIFF")


def _fake_model(change):
    """A copy of the tiny model's folder, changed."""
    def make(ctx):
        dst = ctx["tmp"] / "model-copy"
        shutil.copytree(ctx["model"], dst)
        change(dst)
        ctx["set"]("--pretrained_model_name_or_path", str(dst))
    return make


def _pipeline_class(name):
    def change(dst):
        idx = json.loads((dst / "model_index.json").read_text())
        idx["_class_name"] = name
        (dst / "model_index.json").write_text(json.dumps(idx))
    return change


def _pickled(dst):
    import torch
    from safetensors.torch import load_file
    f = dst / "unet" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(str(f)), dst / "unet" / "diffusion_pytorch_model.bin")
    f.unlink()


def _readonly(ctx):
    # (chmod does not stop root, so the folder is made impossible: its parent is a file)
    blocker = ctx["tmp"] / "a-file"
    blocker.write_text("not a folder")
    ctx["set"]("--output_dir", str(blocker / "run"))


def _other_run(ctx):
    out = ctx["tmp"] / "out"
    out.mkdir()
    (out / "model_index.json").write_text("{}")


def _unfinished_run(ctx):
    ck = ctx["tmp"] / "out" / "checkpoints" / "step_000010"
    ck.mkdir(parents=True)
    (ck / "progress.json").write_text("{}")
    (ck / "trained.safetensors").write_text("{}")
    (ck / "manifest.json").write_text(json.dumps({"files": {"progress.json": 2,
                                                            "trained.safetensors": 2}}))


def _config_file(text):
    def make(ctx):
        p = ctx["tmp"] / "cfg.json"
        p.write_text(text)
        ctx["extra"] += ["--config", str(p)]
    return make


def _photos_replaced(*files):
    def make(ctx):
        d = ctx["tmp"] / "mine"
        d.mkdir()
        for name, fn in files:
            fn(d / name)
        ctx["set"]("--instance_dir", str(d))
    return make


def _add(name, fn):
    return lambda ctx: fn(ctx["photos"] / name)


def _set(flag, value):
    return lambda ctx: ctx["set"](flag, value)


def _flag(*args):
    return lambda ctx: ctx["extra"].extend(args)


def _drop(flag):
    def make(ctx):
        i = ctx["args"].index(flag)
        del ctx["args"][i:i + 2]
    return make


# id -> (set-up, expected words; "ok:" = the run works and prints these words)
CASES = {
    "instance-dir-missing": (_set("--instance_dir", "/nowhere/photos"),
                             ["instance_dir='/nowhere/photos'", "does not exist"]),
    "instance-dir-empty": (_photos_replaced(), ["holds no images"]),
    "instance-dir-is-a-file": (lambda c: c["set"]("--instance_dir", str(c["model"] /
                                                                      "model_index.json")),
                               ["is a file, not a folder"]),
    "only-non-image-files": (_photos_replaced(("notes.txt", lambda p: p.write_text("x")),
                                              ("clip.mp4", lambda p: p.write_bytes(b"0"))),
                             ["holds no images"]),
    "zero-byte-image": (_add("empty.jpg", lambda p: p.write_bytes(b"")),
                        ["empty.jpg", "cannot be read as an image"]),
    "truncated-jpeg": (_add("cut.jpg", lambda p: (_photo(p, format="JPEG"),
                                                  p.write_bytes(p.read_bytes()[:300]))),
                       ["cut.jpg", "cannot be read as an image"]),
    "not-an-image": (_add("fake.png", lambda p: p.write_text("<html>not a picture</html>")),
                     ["fake.png", "cannot be read as an image"]),
    "decompression-bomb": (_add("bomb.png", lambda p: _png_header_only(p, 40000, 40000)),
                           ["bomb.png", "too", "resize"]),
    "animated-gif": (_add("anim.gif", lambda p: Image.new("RGB", (8, 8)).save(
        p, save_all=True, append_images=[Image.new("RGB", (8, 8), "red")])),
                     ["ok:", "left out 1 GIF photo(s), a format dreamkit does not read "
                             "(anim.gif): convert them to JPEG or PNG"]),
    "iphone-heic-only": (_photos_replaced(("IMG_0001.HEIC", lambda p: p.write_bytes(b"ftypheic")),
                                          ("IMG_0002.heic", lambda p: p.write_bytes(b"ftypheic"))),
                         ["holds no images", "left out 2 HEIC photo(s)", "IMG_0001.HEIC",
                          "convert them to JPEG or PNG", "Most Compatible"]),
    "16-bit-png": (_add("deep.png", lambda p: _photo(p, "I;16")), ["ok:", "model saved"]),
    "float-tiff-named-png": (_add("scan.png", lambda p: _float_tiff(p, 1.0)),
                             ["ok:", "model saved"]),
    "float-tiff-with-nan": (_add("scan.png", lambda p: _float_tiff(p, float("nan"))),
                            ["scan.png", "NaN or infinite", "8-bit"]),
    "cmyk-jpeg": (_add("print.jpg", lambda p: _photo(p, "CMYK", format="JPEG")),
                  ["ok:", "model saved"]),
    "la-png": (_add("grey_alpha.png", lambda p: _photo(p, "LA")), ["ok:", "model saved"]),
    "palette-png": (_add("pal.png", lambda p: _photo(p, "P")), ["ok:", "model saved"]),
    "tiny-image": (_add("tiny.png", lambda p: _photo(p, size=(8, 8))),
                   ["ok:", "less than half of resolution=32", "tiny.png (8×8)"]),
    "unknown-model-id": (_set("--pretrained_model_name_or_path", "nobody/no-such-model"),
                         ["pretrained_model_name_or_path='nobody/no-such-model'",
                          "could not be loaded", "HF_HUB_OFFLINE"]),
    "model-path-missing": (_set("--pretrained_model_name_or_path", "./models/none"),
                           ["pretrained_model_name_or_path='./models/none'", "is not a folder"]),
    "model-missing-a-component": (_fake_model(lambda d: shutil.rmtree(d / "vae")),
                                  ["lacks vae/"]),
    "sd3-model": (_fake_model(_pipeline_class("StableDiffusion3Pipeline")),
                  ["StableDiffusion3Pipeline", "1.x/2.x and SDXL"]),
    "sdxl-without-second-encoder": (_fake_model(_pipeline_class("StableDiffusionXLPipeline")),
                                    ["lacks tokenizer_2/, text_encoder_2/"]),
    "single-file-checkpoint": (_fake_model(lambda d: (
        (d / "model_index.json").unlink(), (d / "model.safetensors").write_bytes(b"x"))),
        ["no model_index.json", "must be converted first"]),
    "pickled-weights": (_fake_model(_pickled), ["pickled weights", "allow_pickle=True"]),
    "identifier-empty": (_set("--identifier", ""), ["identifier=''", "one rare word"]),
    "identifier-with-space": (_set("--identifier", "my dog"), ["identifier='my dog'",
                                                               "without spaces"]),
    "negative-prior-weight": (_set("--prior_loss_weight", "-0.5"),
                              ["prior_loss_weight=-0.5", "0 or more"]),
    "zero-steps": (_set("--max_train_steps", "0"), ["max_train_steps=0", "at least 1"]),
    "negative-learning-rate": (_flag("--learning_rate=-1e-6"),
                               ["learning_rate=-1e-06", "above 0"]),
    "fp16-on-cpu": (_set("--mixed_precision", "fp16"), ["mixed_precision='fp16'", "needs a GPU"]),
    "resolution-not-multiple-of-8": (_set("--resolution", "100"),
                                     ["resolution=100", "multiple of 8", "96 or 104"]),
    "prior-without-class": (lambda c: (_drop("--class_noun")(c), c["extra"].extend(
        ["--instance_prompt", "a photo", "--with_prior_preservation"])),
        ["class_prompt=", "prior preservation needs a class prompt"]),
    "prior-with-zero-class-images": (_flag("--with_prior_preservation", "--num_class_images",
                                           "0"), ["num_class_images=0", "100-200"]),
    "no-class-noun-no-prompt": (_drop("--class_noun"), ["class_noun=''", "say what the subject"]),
    "unknown-template-field": (_set("--instance_prompt", "a {tokn} dog"),
                               ["'{tokn}' is not a template field"]),
    "output-dir-not-writable": (_readonly, ["is not writable", "choose a folder"]),
    "output-dir-holds-a-model": (_other_run, ["already holds a trained model", "--overwrite"]),
    "output-dir-holds-an-unfinished-run": (_unfinished_run, ["unfinished run", "step 10",
                                                              "--resume auto"]),
    "resume-from-a-non-checkpoint": (_set("--resume", "/tmp"), ["resume='/tmp'",
                                                                "cannot be used"]),
    "config-file-not-json": (_config_file("{not json"), ["config=", "is not valid JSON"]),
    "config-file-unknown-setting": (_config_file('{"learning_rte": 1e-6}'),
                                    ["learning_rte=", "is not a TrainConfig setting"]),
    "negative-seed": (_set("--seed", "-3"), ["seed=-3", "at least 0"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, tiny_model, photos, tmp_path, capsys):
    setup, words = CASES[case]
    args = ["train", "--pretrained_model_name_or_path", str(tiny_model), "--instance_dir",
            str(photos), "--class_noun", "toy", "--resolution", "32", "--max_train_steps", "1",
            "--output_dir", str(tmp_path / "out"), "--sample_steps", "1",
            "--num_sample_images", "1", "--checkpointing_steps", "0"]

    def set_flag(flag, value):
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args.extend([flag, value])

    ctx = {"args": args, "extra": [], "tmp": tmp_path, "photos": photos, "model": tiny_model,
           "set": set_flag}
    setup(ctx)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    code = main(args + ctx["extra"])
    cap = capsys.readouterr()
    if words[0] == "ok:":
        assert code == 0, cap.err
        for w in words[1:]:
            assert w in cap.out + cap.err, cap.out
        return
    err = cap.err
    assert code == 2, err
    assert err.startswith("dreamkit train: error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err
    after = {p: p.stat().st_mtime_ns for p in before if p.exists()}
    assert after == before, "a refused run changed the user's files"


def test_the_docs_table_lists_every_case():
    from test_bad_inputs_commands import CASES as COMMAND_CASES
    rows = [line.split("|")[1].strip().strip("`") for line in DOC.read_text().splitlines()
            if line.startswith("| `")]
    from test_bad_inputs_api import CASES as API_CASES
    cases = {**CASES, **COMMAND_CASES, **API_CASES}
    assert sorted(rows) == sorted(cases), set(rows) ^ set(cases)
    assert len(cases) >= 80
