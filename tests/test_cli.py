"""The CLI: every bad input gets one line naming the setting and the fix, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from dreamkit.ui.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def _train_args(tiny_model, photos, out, *extra):
    return ["train", "--pretrained_model_name_or_path", str(tiny_model), "--instance_dir",
            str(photos), "--class_noun", "toy", "--resolution", "32", "--max_train_steps", "1",
            "--output_dir", str(out), "--sample_steps", "1", "--num_sample_images", "1", *extra]


@pytest.mark.parametrize("case", ["missing_dir", "empty_dir", "corrupt", "resolution", "steps",
                                  "prior_no_class", "not_diffusers", "lr", "bad_bool"])
def test_bad_inputs_get_one_clear_line(case, tiny_model, photos, tmp_path, capsys):
    out = tmp_path / "out"
    args = _train_args(tiny_model, photos, out)
    expect = {
        "missing_dir": ("instance_dir=", "does not exist"),
        "empty_dir": ("instance_dir=", "holds no images"),
        "corrupt": ("bad.jpg", "cannot be read as an image"),
        "resolution": ("resolution=100", "multiple of 8"),
        "steps": ("max_train_steps=0", "at least 1"),
        "prior_no_class": ("class_prompt=", "prior preservation needs a class prompt"),
        "not_diffusers": ("pretrained_model_name_or_path=", "model_index.json"),
        "lr": ("learning_rate=-1.0", "above 0"),
    }.get(case)
    if case == "missing_dir":
        args[args.index("--instance_dir") + 1] = str(tmp_path / "nowhere")
    elif case == "empty_dir":
        (tmp_path / "empty").mkdir()
        args[args.index("--instance_dir") + 1] = str(tmp_path / "empty")
    elif case == "corrupt":
        (photos / "bad.jpg").write_bytes(b"\xff\xd8\xff not really")
    elif case == "resolution":
        args[args.index("--resolution") + 1] = "100"
    elif case == "steps":
        args[args.index("--max_train_steps") + 1] = "0"
    elif case == "prior_no_class":
        i = args.index("--class_noun")
        del args[i:i + 2]
        args += ["--instance_prompt", "photo", "--with_prior_preservation"]
    elif case == "not_diffusers":
        (tmp_path / "weights").mkdir()
        (tmp_path / "weights" / "model.safetensors").write_bytes(b"x")
        args[args.index("--pretrained_model_name_or_path") + 1] = str(tmp_path / "weights")
        expect = ("pretrained_model_name_or_path=", "must be converted first")
    elif case == "lr":
        args += ["--learning_rate", "-1"]
    elif case == "bad_bool":
        with pytest.raises(SystemExit) as e:
            main(args + ["--with_prior_preservation", "maybe"])
        assert e.value.code == 2
        assert "expected true or false, got 'maybe'" in capsys.readouterr().err
        return
    code, err = _run(args, capsys)
    assert code == 2, err
    assert err.startswith("dreamkit train: error: ")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for words in expect:
        assert words in err, err
    assert not (out / "model_index.json").exists()


def test_existing_model_is_kept_without_overwrite(tiny_model, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_train_args(tiny_model, photos, out)) == 0
    weights = (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    code, err = _run(_train_args(tiny_model, photos, out, "--max_train_steps", "2"), capsys)
    assert code == 2 and "already holds a trained model" in err and "--overwrite" in err
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == weights


def test_diffusers_example_test_scenario(tiny_model, tmp_path):
    """diffusers' test_dreambooth arguments, verbatim apart from the paths."""
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.new("RGB", (80, 60), (40 * i, 90, 200)).save(imgs / f"{i}.png")
    out = tmp_path / "out"
    argv = f"""train --pretrained_model_name_or_path {tiny_model} --instance_data_dir {imgs}
               --instance_prompt photo --resolution 64 --train_batch_size 1
               --gradient_accumulation_steps 1 --max_train_steps 2 --learning_rate 5.0e-04
               --scale_lr --lr_scheduler constant --lr_warmup_steps 0 --output_dir {out}""".split()
    assert main(argv) == 0
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert (out / "scheduler" / "scheduler_config.json").is_file()
    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained(str(out), safety_checker=None)
    images = pipe("photo", num_inference_steps=2, height=64, width=64, output_type="np").images
    assert images.shape == (1, 64, 64, 3)


def test_config_file_and_overrides(tiny_model, photos, tmp_path, capsys):
    from dreamkit import TrainConfig
    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                      class_noun="toy", resolution=32, max_train_steps=3, sample_steps=1,
                      num_sample_images=1, output_dir=str(tmp_path / "out"))
    path = cfg.save(tmp_path / "cfg.json")
    assert main(["train", "--config", str(path), "--max_train_steps", "2"]) == 0
    saved = TrainConfig.load(tmp_path / "out" / "config.json")
    assert saved.max_train_steps == 2 and saved.class_noun == "toy"


def test_class_images_and_generate_commands(tiny_model, tmp_path):
    cls = tmp_path / "cls"
    assert main(["class-images", "--pretrained_model_name_or_path", str(tiny_model),
                 "--instance_dir", "unused", "--class_noun", "toy", "--class_dir", str(cls),
                 "--num_class_images", "2", "--resolution", "32", "--class_inference_steps",
                 "2"]) == 0
    assert sorted(p.name for p in cls.iterdir()) == ["class_00000.png", "class_00001.png"]
    out = tmp_path / "gen"
    assert main(["generate", str(tiny_model), "--prompt", "a photo of toy", "--num_images", "2",
                 "--steps", "2", "--height", "32", "--width", "32", "--seed", "7",
                 "--out", str(out)]) == 0
    img = Image.open(out / "a_photo_of_toy_000008.png")
    assert img.size == (32, 32)
    assert img.text["prompt"] == "a photo of toy" and img.text["seed"] == "8"
    assert Image.open(out / "grid.png").size == (66, 32)
    # A prompt cannot steer files out of --out.
    main(["generate", str(tiny_model), "--prompt", "../../escape/me", "--num_images", "1",
          "--steps", "1", "--height", "32", "--width", "32", "--out", str(tmp_path / "gen2")])
    assert (tmp_path / "gen2" / "escape_me_000000.png").exists()
    assert not (tmp_path / "escape").exists()


def test_generate_writes_into_the_run_and_never_overwrites(tiny_model, photos, tmp_path,
                                                           monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert main(_train_args(tiny_model, photos, run)) == 0
    args = ["generate", str(run), "--prompt", "a photo of toy", "--num_images", "1", "--steps",
            "1", "--height", "32", "--width", "32"]
    assert main(args) == 0 and main(args) == 0  # twice in the same second, too
    folders = sorted((run / "generated").iterdir())
    assert len(folders) == 2 and all((f / "grid.png").is_file() for f in folders)
    capsys.readouterr()
    assert main(args + ["--out", str(folders[0])]) == 2  # a folder with pictures: refused
    err = capsys.readouterr().err
    assert "already holds pictures" in err and len(err.strip().splitlines()) == 1
    assert len(list(folders[0].glob("*.png"))) == 2  # untouched: the picture and the grid
    # any other model: a new folder under ./generated, never inside the model's folder
    assert main(["generate", str(tiny_model)] + args[2:]) == 0
    assert len(list((tmp_path / "generated").iterdir())) == 1
    assert not (tiny_model / "generated").exists()


def test_every_commands_help_is_clean_text():
    """No argparse internals in any help: a stray % once printed a dict of argparse's state."""
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    helps = {"dreamkit": parser.format_help()}
    for name, sub in commands.items():
        helps[name] = sub.format_help()
        for action in sub._actions:  # nested commands: toy pretrain, toy photos
            if isinstance(action, type(parser._subparsers._group_actions[0])):
                helps.update({f"{name} {k}": v.format_help() for k, v in action.choices.items()})
    assert {"train", "plan-memory", "class-images", "generate", "export", "check-data",
            "check-token", "evaluate", "demo", "toy", "env", "toy pretrain"} <= set(helps)
    for name, text in helps.items():
        for internal in ("{'", "%(", "argparse", "Namespace", "<function", "_StoreAction"):
            assert internal not in text, (name, internal)
        assert "usage: dreamkit" in text, name
    assert "~30% slower" in " ".join(helps["train"].split())  # the percent sign survives


def test_help_explains_every_flag():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for flag in ("--prior_loss_weight", "--step_mode", "--instance_data_dir", "--config",
                 "--with_prior_preservation"):
        assert flag in text
    assert "λ in the paper" in text


def test_subprocess_no_traceback_and_debug_shows_it(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "dreamkit", "train", "--instance_dir", str(tmp_path / "none"),
            "--class_noun", "dog", "--pretrained_model_name_or_path", str(tmp_path)]
    r = subprocess.run(base, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "instance_dir=" in r.stderr and "does not exist" in r.stderr
    assert not (tmp_path / "dreambooth-out").exists()  # a failed start leaves nothing behind
    r = subprocess.run([sys.executable, "-m", "dreamkit", "--debug"] + base[3:], capture_output=True,
                       text=True, env=env, timeout=300, cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_non_image_files_are_skipped_and_said_so(tiny_model, photos, tmp_path, capsys):
    (photos / "notes.txt").write_text("my dog's name is Rex")
    (photos / "clip.mp4").write_bytes(b"\0\0")
    assert main(_train_args(tiny_model, photos, tmp_path / "out")) == 0
    out = capsys.readouterr().out
    assert "instance_dir: 4 image(s); skipped 2 non-image file(s): clip.mp4, notes.txt" in out


def test_an_unexpected_error_is_one_line_with_the_traceback_in_a_file(monkeypatch, capsys):
    """A case no check foresaw: no traceback on screen, the file a bug report can attach."""
    from dreamkit.ui import commands

    def boom(args):
        raise RuntimeError("the unforeseen\nsecond line")
    monkeypatch.setattr(commands, "cmd_check_token", boom)
    assert main(["check-token", "zshq"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "unexpected error: RuntimeError: the unforeseen (traceback in " in err
    log = Path(err.split("traceback in ")[1].split(";")[0])
    assert "Traceback" in log.read_text() and "the unforeseen" in log.read_text()
    with pytest.raises(RuntimeError):
        main(["--debug", "check-token", "zshq"])
