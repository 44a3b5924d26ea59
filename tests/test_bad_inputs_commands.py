"""Bad inputs on every command, not only `train` (docs/bad-inputs.md, second table).

Each case runs one `dreamkit` command in process and checks: a non-zero exit, at most three
lines on stderr, no traceback, the expected words (the setting, the value, the fix), and that
nothing the user had on disk was changed or added among the inputs.
"""

import json
from pathlib import Path

import pytest

from dreamkit import TrainConfig, train
from dreamkit.ui.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """A finished one-step run of the tiny model: what generate, export and evaluate take."""
    from dreamkit.testing import make_photos
    root = tmp_path_factory.mktemp("bad-commands")
    make_photos(root / "photos", n=3, size=32)
    train(TrainConfig(pretrained_model_name_or_path=str(tiny_model),
                      instance_dir=str(root / "photos"), class_noun="toy", resolution=32,
                      max_train_steps=1, sample_steps=1, num_sample_images=1,
                      checkpointing_steps=0, output_dir=str(root / "run")), callbacks=[])
    return root / "run"


def _train(*extra):
    return lambda c: ["train", "--pretrained_model_name_or_path", c["model"], "--instance_dir",
                      c["photos"], "--class_noun", "toy", "--resolution", "32",
                      "--max_train_steps", "1", "--sample_steps", "1", "--num_sample_images",
                      "1", "--checkpointing_steps", "0", "--output_dir", c["tmp"] + "/out",
                      *[e.format(**c) for e in extra]]


def _gen(*extra):
    return lambda c: ["generate", c["run"], "--prompt", "a photo of toy", "--num_images", "1",
                      "--steps", "1", "--height", "32", "--width", "32", "--out",
                      c["tmp"] + "/gen", *[e.format(**c) for e in extra]]


def _cmd(*argv):
    return lambda c: [a.format(**c) for a in argv]


READ_ONLY = "/sys/dreamkit-out"  # root ignores chmod; the kernel's /sys refuses new files


def _sys_read_only() -> bool:
    import tempfile
    try:
        with tempfile.TemporaryFile(dir="/sys"):
            return False
    except OSError:
        return True


def _setup(prepare, make):
    """`make`'s argv, after `prepare(ctx)` put something on disk (or patched the machine)."""
    def run(c):
        prepare(c)
        return make(c)
    return run


def _other_lora(c):
    """A LoRA file whose layers have other sizes than the tiny model's (another model's)."""
    import torch
    from safetensors.torch import save_file
    key = "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    save_file({f"{key}.lora_A.weight": torch.zeros(4, 320),
               f"{key}.lora_B.weight": torch.zeros(320, 4)},
              str(Path(c["tmp"]) / "other_lora.safetensors"))


def _checkpoint_of(**settings):
    """A one-step run with a checkpoint in {tmp}/out, trained with `settings` changed."""
    def prepare(c):
        from dreamkit import TrainConfig, train
        model = c["model"]
        if settings.get("pretrained_model_name_or_path") == "copy":
            import shutil
            model = shutil.copytree(c["model"], Path(c["tmp"]) / "model-copy")
        train(TrainConfig(**{"pretrained_model_name_or_path": str(model),
                             "instance_dir": c["photos"], "class_noun": "toy", "resolution": 32,
                             "max_train_steps": 1, "sample_steps": 1, "num_sample_images": 1,
                             "checkpointing_steps": 1, "keep_checkpoints": True,
                             "output_dir": c["tmp"] + "/out", "learning_rate": 1e-4,
                             **{k: v for k, v in settings.items()
                                if k != "pretrained_model_name_or_path"}}), callbacks=[])
    return prepare


def _killed(prepare):
    """`prepare`'s run as a kill before its final save leaves it: checkpoints, no model."""
    def run(c):
        prepare(c)
        (Path(c["tmp"]) / "out" / "model_index.json").unlink()
    return run


def _fake_checkpoint(c):
    ck = Path(c["tmp"]) / "ck"
    ck.mkdir()
    (ck / "manifest.json").write_text('{"files": [1, 2]}')


def _lock(host=None):
    """A run lock in {tmp}/out held by a live process (this one's parent) or another machine."""
    def prepare(c):
        import os
        import socket
        out = Path(c["tmp"]) / "out"
        out.mkdir(exist_ok=True)
        (out / ".dreamkit-run.lock").write_text(json.dumps(
            {"pid": os.getppid(), "host": host or socket.gethostname(), "started": None,
             "since": "2026-12-03 09:00:00"}))
    return prepare


def _small_disk(c):
    import shutil
    free = shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000)  # 1 kB free
    c["patch"].setattr("dreamkit.training.bounds.shutil.disk_usage", lambda p: free)


def _unreachable_hub(c):
    c["patch"].delenv("HF_HUB_OFFLINE", raising=False)
    c["patch"].setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # a closed port: no network
    c["patch"].setenv("HF_TOKEN", "hf_made_up")


def _with_model(folder, make):
    """`make`'s argv, after putting a model's marker in `folder` (someone else's model)."""
    def run(c):
        path = Path(folder.format(**c))
        path.mkdir(parents=True, exist_ok=True)
        (path / "model_index.json").write_text("{}")
        return make(c)
    return run


def _config_with(**fields):
    def make(c):
        path = Path(c["tmp"]) / "cfg.json"
        path.write_text(json.dumps({"pretrained_model_name_or_path": c["model"],
                                    "instance_dir": c["photos"], "class_noun": "toy",
                                    "output_dir": c["tmp"] + "/out", "resolution": 32,
                                    **fields}))
        return ["train", "--config", str(path)]
    return make


# case -> (argv from the context, words the message must hold)
CASES = {
    # generate
    "generate-zero-steps": (_gen("--steps", "0"), ["steps=0", "at least 1"]),
    "generate-zero-images": (_gen("--num_images", "0"), ["num_images=0", "at least 1"]),
    "generate-height-30": (_gen("--height", "30"), ["height=30", "multiple of 8"]),
    "generate-negative-width": (_gen("--width", "-8"), ["width=-8", "multiple of 8"]),
    "generate-huge-seed": (_gen("--seed", str(2**32)), ["seed=4294967296", "at most"]),
    "generate-negative-guidance": (_gen("--guidance_scale", "-1"), ["guidance_scale=-1",
                                                                    "0 or more"]),
    "generate-empty-prompt": (_gen("--prompt", " "), ["prompt=", "say what to draw"]),
    "generate-out-is-a-file": (_gen("--out", "{tmp}/note.txt"), ["out=", "is a file"]),
    "generate-missing-model": (_cmd("generate", "{tmp}/nowhere", "--prompt", "a toy"),
                               ["model=", "is not a folder"]),
    "generate-missing-lora": (_gen("--lora", "{tmp}/none.safetensors"), ["lora=",
                                                                          "could not be loaded"]),
    "generate-unknown-scheduler": (_gen("--scheduler", "fast"), ["--scheduler", "invalid choice"]),
    "generate-steps-not-a-number": (_gen("--steps", "many"), ["--steps", "invalid int"]),
    # export
    "export-out-is-the-model": (_cmd("export", "{run}", "--out", "{run}"),
                                ["out=", "is the model folder"]),
    "export-out-inside-the-model": (_cmd("export", "{run}", "--out", "{run}/export"),
                                    ["out=", "is inside the model folder"]),
    "export-over-another-model": (_with_model("{tmp}/other", _cmd("export", "{run}", "--out",
                                                                   "{tmp}/other")),
                                  ["out=", "already holds a model", "--overwrite"]),
    "export-over-its-base-model": (_cmd("export", "{run}", "--out", "{model}"),
                                   ["out=", "is its base model"]),
    "export-out-is-a-file": (_cmd("export", "{run}", "--out", "{tmp}/note.txt"),
                             ["out=", "is a file"]),
    "export-missing-model": (_cmd("export", "{tmp}/nowhere", "--out", "{tmp}/x"),
                             ["model=", "is not a folder"]),
    "export-bad-hub-name": (_cmd("export", "{run}", "--out", "{tmp}/x", "--push_to_hub",
                                 "my-dog"), ["push_to_hub='my-dog'", "USER/NAME"]),
    "export-push-offline": (_cmd("export", "{run}", "--out", "{tmp}/x", "--push_to_hub",
                                 "me/my-dog"), ["HF_HUB_OFFLINE=1", "nothing can be uploaded"]),
    "export-nothing-to-write": (_cmd("export", "{run}", "--out", "{tmp}/x", "--no_diffusers"),
                                ["no_diffusers=True", "nothing to export", "--single_file"]),
    "export-bad-lora-name": (_cmd("export", "{run}", "--out", "{tmp}/x", "--name", "my/dog"),
                             ["name='my/dog'", "letters, digits"]),
    "export-single-file-of-a-folder-that-is-no-model": (
        _cmd("export", "{photos}", "--out", "{tmp}/x", "--single_file"), ["model_index.json"]),
    # check-data
    "check-data-missing-folder": (_cmd("check-data", "{tmp}/nowhere"),
                                  ["instance_dir=", "does not exist"]),
    "check-data-grid-is-a-folder": (_cmd("check-data", "{photos}", "--grid", "{tmp}"),
                                    ["grid=", "is a folder"]),
    "check-data-grid-not-a-picture": (_cmd("check-data", "{photos}", "--grid", "{tmp}/g.txt"),
                                      ["grid=", ".png"]),
    "check-data-fix-into-the-photos": (_cmd("check-data", "{photos}", "--fix", "{photos}/fixed"),
                                       ["fix=", "is inside the photo folder"]),
    "check-data-fix-is-the-photos": (_cmd("check-data", "{photos}", "--fix", "{photos}"),
                                     ["fix=", "is the photo folder"]),
    "check-data-resolution-zero": (_cmd("check-data", "{photos}", "--resolution", "0"),
                                   ["resolution=0", "at least 8"]),
    "check-data-resolution-30": (_cmd("check-data", "{photos}", "--resolution", "30"),
                                 ["resolution=30", "multiple of 8"]),
    # check-token
    "check-token-empty": (_cmd("check-token", " ", "--model", "{model}"),
                          ["identifier=", "one rare word"]),
    "check-token-two-words": (_cmd("check-token", "my dog", "--model", "{model}"),
                              ["identifier='my dog'", "without spaces"]),
    "check-token-negative-suggest": (_cmd("check-token", "zshq", "--model", "{model}",
                                          "--suggest", "-1"), ["suggest=-1", "at least 0"]),
    "check-token-missing-model": (_cmd("check-token", "zshq", "--model", "{tmp}/nowhere"),
                                  ["is not a folder"]),
    "check-token-offline-hub-id": (_cmd("check-token", "zshq"),
                                   ["could not be loaded", "sd-vocabulary"]),
    # plan-memory
    "plan-memory-missing-model": (_cmd("plan-memory", "--pretrained_model_name_or_path",
                                       "{tmp}/nowhere"), ["is not a folder"]),
    "plan-memory-unknown-gpu": (_cmd("plan-memory", "--gpu", "T5"), ["gpu='T5'", "T4"]),
    "plan-memory-bad-resolution": (_cmd("plan-memory", "--resolution", "30"),
                                   ["resolution=30", "multiple of 8"]),
    # evaluate
    "evaluate-not-a-run": (_cmd("evaluate", "{tmp}"), ["is not a finished dreamkit run"]),
    "evaluate-zero-per-prompt": (_cmd("evaluate", "{run}", "--per_prompt", "0"),
                                 ["per_prompt=0", "at least 1"]),
    "evaluate-too-many-prompts": (_cmd("evaluate", "{run}", "--prompts", "26"),
                                  ["prompts=26", "at most 25"]),
    "evaluate-one-class-picture": (_cmd("evaluate", "{run}", "--n_class", "1"),
                                   ["n_class=1", "at least 2"]),
    "evaluate-models-offline": (_cmd("evaluate", "{run}", "--scorer", "models"),
                                ["could not be loaded"]),
    # class-images and demo
    "class-images-zero": (_cmd("class-images", "--pretrained_model_name_or_path", "{model}",
                               "--instance_dir", "{photos}", "--class_noun", "toy",
                               "--num_class_images", "0", "--with_prior_preservation"),
                          ["num_class_images=0"]),
    "class-images-into-the-photos": (_cmd("class-images", "--pretrained_model_name_or_path",
                                          "{model}", "--instance_dir", "{photos}", "--class_noun",
                                          "toy", "--class_dir", "{photos}"),
                                     ["class_dir=", "is instance_dir"]),
    "demo-zero-steps": (_cmd("demo", "--steps", "0", "--out", "{tmp}/demo"), ["steps=0"]),
    "demo-huge-seed": (_cmd("demo", "--seed", str(2**40), "--out", "{tmp}/demo"),
                       ["seed=", "at most"]),
    # train: settings and config files the first table does not cover
    "output-dir-is-the-photos": (_train("--output_dir", "{photos}"),
                                 ["output_dir=", "is instance_dir"]),
    "output-dir-inside-the-photos": (_train("--output_dir", "{photos}/run"),
                                     ["output_dir=", "is inside instance_dir"]),
    "output-dir-holds-the-photos": (_train("--output_dir", "{photos}/.."),
                                    ["output_dir=", "holds instance_dir"]),
    "output-dir-is-the-model": (_train("--output_dir", "{model}"),
                                ["output_dir=", "pretrained_model_name_or_path"]),
    "class-dir-is-the-photos": (_train("--with_prior_preservation", "--class_dir", "{photos}"),
                                ["class_dir=", "is instance_dir"]),
    "learning-rate-inf": (_train("--learning_rate", "inf"), ["learning_rate=inf", "finite"]),
    "learning-rate-nan": (_train("--learning_rate", "nan"), ["learning_rate=nan", "finite"]),
    "seed-beyond-2-32": (_train("--seed", str(2**32)), ["seed=4294967296", "at most"]),
    "brace-in-prompt": (lambda c: _train()(c) + ["--instance_prompt", "a photo of {token toy"],
                        ["instance_prompt=", "lone brace"]),
    "lora-target-typo": (_train("--use_lora", "--learning_rate", "1e-4",
                                "--lora_target_modules", "to_qq"),
                         ["lora_target_modules=", "not all are layers", "to_q"]),
    "one-identifier-two-subjects": (_train("--concepts", '[{{"instance_dir": "{photos}", '
                                           '"identifier": "zwx", "class_noun": "dog"}}, '
                                           '{{"instance_dir": "{photos}", "identifier": "zwx", '
                                           '"class_noun": "cat"}}]', "--instance_dir", ""),
                                    ["concepts[1].identifier='zwx'", "already uses it"]),
    "config-is-a-folder": (_cmd("train", "--config", "{tmp}"), ["config=", "is a folder"]),
    "config-bool-in-quotes": (_config_with(with_prior_preservation="false"),
                              ["with_prior_preservation='false'", "true or false"]),
    "config-number-in-quotes": (_config_with(learning_rate="1e-4"),
                                ["learning_rate='1e-4'", "finite number"]),
    "config-text-as-number": (_config_with(identifier=5), ["identifier=5"]),
    "config-list-as-text": (_config_with(sample_prompts="a photo"), ["sample_prompts="]),
    "resume-diffusers-name-missing": (_train("--resume_from_checkpoint", "checkpoint-7"),
                                      ["resume='checkpoint-7'", "no such folder"]),
    # outputs among inputs, read-only folders, empty names (every face that writes)
    "generate-out-read-only": (_gen("--out", READ_ONLY), ["out=", "is not writable"]),
    "generate-out-in-the-photos": (_gen("--out", "{photos}/gen"),
                                   ["out=", "is inside its photo folder"]),
    "generate-out-is-the-photos": (_gen("--out", "{photos}"), ["out=", "is its photo folder"]),
    "generate-out-empty": (_gen("--out", ""), ["out=''", "give a folder name"]),
    "generate-base-not-a-model": (_gen("--base", "{tmp}"), ["base=", "model_index.json"]),
    "generate-base-missing": (_gen("--base", "/nonexistent"), ["base=", "model_index.json"]),
    "generate-base-for-a-whole-model": (_gen("--base", "{model}"),
                                        ["base=", "only for a LoRA run", "leave --base out"]),
    "generate-lora-of-another-model": (_setup(_other_lora, _gen("--lora",
                                                                 "{tmp}/other_lora.safetensors")),
                                       ["lora=", "other sizes", "another model"]),
    "generate-nan-guidance": (_gen("--guidance_scale", "nan"), ["guidance_scale=nan", "finite"]),
    "generate-huge-height": (_gen("--height", "100000"), ["height=100000", "at most 4096"]),
    "generate-65-images": (_gen("--num_images", "65"), ["num_images=65", "at most 64"]),
    "export-out-read-only": (_cmd("export", "{run}", "--out", READ_ONLY),
                             ["out=", "is not writable"]),
    "export-out-is-the-photos": (_cmd("export", "{run}", "--out", "{photos}"),
                                 ["out=", "is its photo folder"]),
    "export-out-inside-the-photos": (_cmd("export", "{run}", "--out", "{photos}/model"),
                                     ["out=", "is inside its photo folder"]),
    "export-out-holds-the-run-and-photos": (_cmd("export", "{run}", "--out", "{photos}/.."),
                                            ["out=", "holds the model folder"]),
    "export-out-empty": (_cmd("export", "{run}", "--out", ""), ["out=''", "give a folder name"]),
    "export-push-no-network": (_setup(_unreachable_hub, _cmd(
        "export", "{run}", "--out", "{tmp}/x", "--push_to_hub", "me/my-dog")),
        ["push_to_hub", "network cannot be reached", "can be uploaded later"]),
    "check-data-grid-among-the-photos": (_cmd("check-data", "{photos}", "--grid",
                                              "{photos}/grid.png"),
                                         ["grid=", "is inside the photo folder"]),
    "check-data-grid-read-only": (_cmd("check-data", "{photos}", "--grid", READ_ONLY + "/g.png"),
                                  ["grid=", "is not writable"]),
    "check-data-fix-read-only": (_cmd("check-data", "{photos}", "--fix", READ_ONLY),
                                 ["fix=", "is not writable"]),
    "check-data-fix-into-a-model": (_cmd("check-data", "{photos}", "--fix", "{model}"),
                                    ["fix=", "holds a model"]),
    "check-data-fix-holds-the-photos": (_cmd("check-data", "{photos}", "--fix", "{photos}/.."),
                                        ["fix=", "holds the photo folder"]),
    "check-data-fix-is-a-file": (_cmd("check-data", "{photos}", "--fix", "{tmp}/note.txt"),
                                 ["fix=", "is a file"]),
    "check-data-resolution-huge": (_cmd("check-data", "{photos}", "--resolution", "100000"),
                                   ["resolution=100000", "at most 4096"]),
    "check-token-tab": (_cmd("check-token", "zs\tq", "--model", "{model}"),
                        ["identifier=", "one rare word"]),
    "check-token-newline": (_cmd("check-token", "zs\nq", "--model", "{model}"),
                            ["identifier=", "one rare word"]),
    "class-images-read-only": (_cmd("class-images", "--pretrained_model_name_or_path", "{model}",
                                    "--instance_dir", "{photos}", "--class_noun", "toy",
                                    "--class_dir", READ_ONLY),
                               ["class_dir=", "is not writable"]),
    "class-images-into-the-model": (_cmd("class-images", "--pretrained_model_name_or_path",
                                         "{model}", "--instance_dir", "{photos}", "--class_noun",
                                         "toy", "--class_dir", "{model}/classes"),
                                    ["class_dir=", "is inside pretrained_model_name_or_path"]),
    "demo-out-is-a-file": (_cmd("demo", "--out", "{tmp}/note.txt"), ["out=", "is a file"]),
    "demo-out-read-only": (_cmd("demo", "--out", READ_ONLY), ["out=", "is not writable"]),
    "demo-out-empty": (_cmd("demo", "--out", ""), ["out=''", "give a folder name"]),
    "toy-photos-into-a-model": (_cmd("toy", "photos", "{model}"), ["out=", "holds a model"]),
    "toy-photos-into-a-file": (_cmd("toy", "photos", "{tmp}/note.txt"), ["out=", "is a file"]),
    "toy-pretrain-zero-images": (_cmd("toy", "pretrain", "--out", "{tmp}/tb", "--images", "0"),
                                 ["images=0", "at least 1"]),
    "evaluate-run-read-only": (_cmd("evaluate", "/sys"), ["run='/sys'", "is not writable"]),
    "output-dir-empty": (_train("--output_dir", ""), ["output_dir=''", "give a folder name"]),
    "output-dir-read-only": (_train("--output_dir", READ_ONLY), ["output_dir=",
                                                                 "is not writable"]),
    # sizes: typos bounded, then what this model can use, then the disk
    "lora-rank-huge": (_train("--use_lora", "--learning_rate", "1e-4", "--lora_rank", "100000"),
                       ["lora_rank=100000", "beyond 1024"]),
    "lora-rank-wider-than-the-layers": (_train("--use_lora", "--learning_rate", "1e-4",
                                               "--lora_rank", "500"),
                                        ["lora_rank=500", "wider than every layer", "64"]),
    "resolution-huge": (_train("--resolution", "100000"), ["resolution=100000", "beyond 4096"]),
    "resolution-beyond-the-model": (_train("--resolution", "256"),
                                    ["resolution=256", "trained at (32 px)", "use 32"]),
    "class-images-20000": (_train("--with_prior_preservation", "--num_class_images", "20000"),
                           ["num_class_images=20000", "take hours"]),
    "steps-two-million": (_train("--max_train_steps", "2000000"),
                          ["max_train_steps=2000000", "typo"]),
    "sample-images-100": (_train("--num_sample_images", "100"),
                          ["num_sample_images=100", "at most 64"]),
    "disk-too-small-for-the-run": (_setup(_small_disk, _train("--checkpointing_steps", "1")),
                                   ["output_dir=", "GB free", "checkpointing_steps=0"]),
    "identifier-with-tab": (_train("--identifier", "zs\tq"), ["identifier=", "one rare word"]),
    "identifier-with-newline": (_train("--identifier", "zs\nq"), ["identifier=",
                                                                   "one rare word"]),
    "guidance-nan": (_train("--guidance_scale", "nan"), ["guidance_scale=nan", "finite"]),
    # one run per folder
    "output-dir-in-use": (_setup(_lock(), _train()), ["output_dir=", "in use by another "
                                                      "training run", "process"]),
    "output-dir-in-use-on-another-machine": (_setup(_lock("colab-vm-2"), _train()),
                                             ["in use by another training run", "colab-vm-2"]),
    # resuming something else
    "resume-with-another-model": (_setup(_checkpoint_of(pretrained_model_name_or_path="copy"),
                                         _train("--resume", "auto", "--max_train_steps", "2",
                                                "--learning_rate", "1e-4")),
                                  ["resume:", "pretrained_model_name_or_path=", "other "
                                   "settings"]),
    "resume-lora-into-full": (_setup(_checkpoint_of(use_lora=True), _train(
        "--resume", "auto", "--max_train_steps", "2", "--learning_rate", "1e-4")),
        ["resume:", "use_lora=True there, False now"]),
    "resume-other-lora-rank": (_setup(_checkpoint_of(use_lora=True, lora_rank=4), _train(
        "--resume", "auto", "--max_train_steps", "2", "--use_lora", "--lora_rank", "8",
        "--learning_rate", "1e-4")), ["resume:", "lora_rank=4 there, 8 now"]),
    "resume-past-the-last-step": (_setup(_killed(_checkpoint_of(max_train_steps=2,
                                                                checkpointing_steps=2)),
                                         _train("--resume", "{tmp}/out/checkpoints/step_000002",
                                                "--learning_rate", "1e-4")),
                                  ["resume:", "at step 2, past max_train_steps=1"]),
    "resume-fake-manifest": (_setup(_fake_checkpoint, _train("--resume", "{tmp}/ck")),
                             ["resume=", "cannot be used", "manifest"]),
    # config files: every kind of setting in quotes or null
    "config-weight-decay-in-quotes": (_config_with(adam_weight_decay="0.01"),
                                      ["adam_weight_decay='0.01'", "finite number"]),
    "config-guidance-null": (_config_with(guidance_scale=None), ["guidance_scale=None",
                                                                 "finite number"]),
    "config-steps-in-quotes": (_config_with(max_train_steps="100"),
                               ["max_train_steps='100'", "whole number"]),
    "config-resolution-float": (_config_with(resolution=512.0), ["resolution=512.0",
                                                                 "whole number"]),
    "config-lora-alpha-in-quotes": (_config_with(lora_alpha="8"), ["lora_alpha='8'",
                                                                   "finite number"]),
    "config-output-dir-null": (_config_with(output_dir=None), ["output_dir=None",
                                                               "must be text"]),
    "report-to-wandb-not-installed": (_train("--report_to", "wandb"),
                                      ["report_to='wandb'", "pip install wandb"]),
    "plan-memory-lora-rank-zero": (_cmd("plan-memory", "--use_lora", "--lora_rank", "0"),
                                   ["lora_rank=0", "at least 1"]),
}


def _snapshot(*folders) -> dict:
    return {p: p.stat().st_mtime_ns for f in folders for p in Path(f).rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_on_every_command(case, tiny_model, trained, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if case == "report-to-wandb-not-installed":
        import importlib.util
        if importlib.util.find_spec("wandb") is not None:
            pytest.skip("wandb is installed here, so report_to='wandb' is not refused")
    if "read-only" in case and not _sys_read_only():
        pytest.skip("this machine lets /sys be written, so no read-only folder is at hand")
    photos = trained.parent / "photos"
    (tmp_path / "note.txt").write_text("a file where a folder belongs")
    ctx = {"model": str(tiny_model), "run": str(trained), "photos": str(photos),
           "tmp": str(tmp_path), "patch": monkeypatch}
    make, words = CASES[case]
    argv = make(ctx)
    before = _snapshot(tiny_model, trained, photos)
    listed = {p for p in photos.rglob("*")}
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors (a flag's type or choices)
        code = e.code
    err = capsys.readouterr().err
    assert code not in (0, None), (case, err)
    assert "Traceback" not in err and 0 < len(err.strip().splitlines()) <= 3, err
    for w in words:
        assert w in err, (case, w, err)
    assert _snapshot(tiny_model, trained, photos) == before, "an input was changed"
    assert {p for p in photos.rglob("*")} == listed, "something was written among the photos"
