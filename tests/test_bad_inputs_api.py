"""Bad inputs through the Python API and the notebooks' helpers (docs/bad-inputs.md, third table).

What a tutorial reader or a notebook cell calls must refuse as the CLI does: a `DreamkitError`
(the notebooks show it as its one line, `brief_errors`) naming the setting, the value and the
fix, through the same checks (core/checks.py, core/validate.py), with nothing written among the
inputs. Each case is a call on a context of real files: a tiny model, a finished run, photos.
"""

import json
import os
import socket
from pathlib import Path

import pytest
import torch

import dreamkit as dk
from dreamkit.outputs.export import export_all, export_single_file
from dreamkit.outputs.sample import output_folder
from dreamkit.planning.planner import plan
from dreamkit.toy.demo import run_demo
from dreamkit.ui.notebook import notebook_config, try_model
from test_bad_inputs_commands import READ_ONLY, _sys_read_only as sys_read_only

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-inputs.md"


@pytest.fixture(scope="module")
def world(tiny_model, tmp_path_factory):
    """A finished one-step run of the tiny model, its photos, and the model's tokenizer."""
    from transformers import CLIPTokenizer

    from dreamkit.testing import make_photos
    root = tmp_path_factory.mktemp("bad-api")
    make_photos(root / "photos", n=3, size=32)
    dk.train(dk.TrainConfig(pretrained_model_name_or_path=str(tiny_model),
                            instance_dir=str(root / "photos"), class_noun="toy", resolution=32,
                            max_train_steps=1, sample_steps=1, num_sample_images=1,
                            checkpointing_steps=0, output_dir=str(root / "run")), callbacks=[])
    tok = CLIPTokenizer.from_pretrained(str(tiny_model), subfolder="tokenizer")
    return {"model": tiny_model, "run": root / "run", "photos": root / "photos", "tok": tok}


def _config(c, **changes):
    return dk.TrainConfig(**{"pretrained_model_name_or_path": str(c["model"]),
                             "instance_dir": str(c["photos"]), "class_noun": "toy",
                             "resolution": 32, "output_dir": str(c["tmp"] / "out"), **changes})


def _report(c):
    return dk.check_photos(c["photos"], resolution=32, progress=False)


def _gen(c, prompt="a photo of toy", **kw):
    return dk.generate(str(c["run"]), prompt, **{"num_images": 1, "num_inference_steps": 1,
                                                 "height": 32, "width": 32, **kw})


def _panel(**kw):
    pytest.importorskip("ipywidgets")
    from dreamkit.ui.widgets import ConfigPanel
    return ConfigPanel(**kw)


def _form(c, **changes):
    form = dict(identifier="zshq", class_noun="toy", steps=10, prior_preservation=False,
                prior_loss_weight=1.0, num_class_images=0, learning_rate=1e-6, resolution=32)
    return notebook_config(False, str(c["model"]), c["photos"], c["tmp"] / "out",
                           **{**form, **changes})


def _locked_train(c):
    out = c["tmp"] / "out"
    out.mkdir()
    (out / ".dreamkit-run.lock").write_text(json.dumps(
        {"pid": os.getppid(), "host": socket.gethostname(), "started": None, "since": "09:00"}))
    dk.train(_config(c), callbacks=[])


# case -> (the call, words its one line must hold)
CASES = {
    # TrainConfig, as a notebook or a tutorial reader builds it
    "api-config-weight-decay-as-text": (lambda c: _config(c, adam_weight_decay="0.01"),
                                        ["adam_weight_decay='0.01'", "finite number"]),
    "api-config-guidance-none": (lambda c: _config(c, guidance_scale=None),
                                 ["guidance_scale=None", "finite number"]),
    "api-config-guidance-nan": (lambda c: _config(c, guidance_scale=float("nan")),
                                ["guidance_scale=nan", "finite number"]),
    "api-config-guidance-inf": (lambda c: _config(c, guidance_scale=float("inf")),
                                ["guidance_scale=inf", "finite number"]),
    "api-config-identifier-with-tab": (lambda c: _config(c, identifier="zs\tq"),
                                       ["identifier='zs\\tq'", "one rare word"]),
    "api-config-identifier-with-newline": (lambda c: _config(c, identifier="zshq\n"),
                                           ["identifier='zshq\\n'", "one rare word"]),
    "api-config-output-dir-empty": (lambda c: _config(c, output_dir=""),
                                    ["output_dir=''", "current folder"]),
    "api-config-lora-rank-huge": (lambda c: _config(c, use_lora=True, lora_rank=100000),
                                  ["lora_rank=100000", "beyond 1024"]),
    "api-config-resolution-huge": (lambda c: _config(c, resolution=100000),
                                   ["resolution=100000", "beyond 4096"]),
    "api-config-steps-fraction": (lambda c: _config(c, max_train_steps=10.5),
                                  ["max_train_steps=10.5", "whole number"]),
    "api-config-seed-as-text": (lambda c: _config(c, seed="7"), ["seed='7'", "whole number"]),
    "api-config-concepts-as-text": (lambda c: _config(c, concepts="dog"),
                                    ["concepts='dog'", "must be a list"]),
    "api-config-learning-rate-true": (lambda c: _config(c, learning_rate=True),
                                      ["learning_rate=True", "finite number"]),
    "api-knob-snr-gamma-zero": (lambda c: _config(c, snr_gamma=0),
        ["snr_gamma=0", "finite number above 0"]),
    "api-knob-snr-gamma-as-text": (lambda c: _config(c, snr_gamma="5"),
        ["snr_gamma='5'", "finite number"]),
    "api-knob-noise-offset-negative": (lambda c: _config(c, noise_offset=-0.1),
        ["noise_offset=-0.1", "0 or more"]),
    "api-knob-noise-offset-huge": (lambda c: _config(c, noise_offset=2.0),
        ["noise_offset=2.0", "outweighs the noise"]),
    "api-knob-lora-dropout-one": (lambda c: _config(c, use_lora=True, lora_dropout=1.0),
        ["lora_dropout=1.0", "below 1"]),
    "api-knob-dropout-without-lora": (lambda c: _config(c, lora_dropout=0.1),
        ["lora_dropout=0.1", "turn use_lora on"]),
    "api-knob-dora-without-lora": (lambda c: _config(c, use_dora=True),
        ["use_dora=True", "turn use_lora on"]),
    "api-knob-dora-with-text-encoder": (lambda c: _config(c, use_lora=True, use_dora=True,
                                                          train_text_encoder=True),
        ["use_dora=True", "do not load back"]),
    "api-knob-repeats-zero": (lambda c: _config(c, repeats=0),
        ["repeats=0", "at least 1"]),
    "api-knob-epochs-negative": (lambda c: _config(c, num_train_epochs=-1),
        ["num_train_epochs=-1", "at least 0"]),
    "api-knob-cycles-zero": (lambda c: _config(c, lr_num_cycles=0),
        ["lr_num_cycles=0", "at least 1"]),
    "api-knob-power-zero": (lambda c: _config(c, lr_power=0),
        ["lr_power=0", "above 0"]),
    "api-knob-optimizer-unknown": (lambda c: _config(c, optimizer="sgd"),
        ["optimizer='sgd'", "adamw, prodigy"]),
    "api-knob-prodigy-in-backward": (lambda c: _config(c, optimizer="prodigy",
                                                       optimizer_in_backward=True),
        ["optimizer='prodigy'", "inside backward"]),
    "api-knob-prodigy-8bit": (lambda c: _config(c, optimizer="prodigy", use_8bit_adam=True),
        ["use_8bit_adam=True", "turn use_8bit_adam off"]),
    "api-knob-prodigy-beta3-one": (lambda c: _config(c, optimizer="prodigy", prodigy_beta3=1.0),
        ["prodigy_beta3=1.0", "[0, 1)"]),
    "api-knob-report-to-unknown": (lambda c: _config(c, report_to="mlflow"),
        ["report_to='mlflow'", "tensorboard, wandb"]),
    "api-knob-flip-as-text": (lambda c: _config(c, random_flip="yes"),
        ["random_flip='yes'", "true or false"]),
    "api-config-sample-images-negative": (lambda c: _config(c, num_sample_images=-1),
                                          ["num_sample_images=-1", "at least 0"]),
    "api-config-read-only-output": (lambda c: _config(c, output_dir=READ_ONLY).check_ready(),
                                    ["output_dir=", "is not writable"]),
    "api-train-folder-in-use": (_locked_train, ["in use by another training run", "process"]),
    "api-load-config-missing": (lambda c: dk.TrainConfig.load(c["tmp"] / "none.json"),
                                ["config=", "no such file"]),
    # export
    "api-export-all-to-a-file": (lambda c: export_all(c["run"], c["run"] / "model_index.json"),
                                 ["out=", "is a file"]),
    "api-export-all-into-the-photos": (lambda c: export_all(c["run"], c["photos"]),
                                       ["out=", "is its photo folder"]),
    "api-export-all-over-the-base-model": (lambda c: export_all(c["run"], c["model"]),
                                           ["out=", "is its base model"]),
    "api-export-all-empty-name": (lambda c: export_all(c["run"], ""),
                                  ["out=''", "give a folder name"]),
    "api-export-all-read-only": (lambda c: export_all(c["run"], READ_ONLY),
                                 ["out=", "is not writable"]),
    "api-export-single-file-to-a-folder": (lambda c: export_single_file(c["run"], c["tmp"]),
                                           ["out_file=", "is a folder", ".safetensors"]),
    "api-export-single-file-read-only": (lambda c: export_single_file(
        c["run"], READ_ONLY + "/m.safetensors"), ["out_file=", "is not writable"]),
    "api-export-single-file-as-ckpt": (lambda c: export_single_file(c["run"],
                                                                    c["tmp"] / "m.ckpt"),
                                       ["out_file=", "ending in .safetensors"]),
    "api-export-single-file-inside-the-run": (lambda c: export_single_file(
        c["run"], c["run"] / "m.safetensors"), ["out_file=", "is inside the model folder"]),
    # the photo doctor
    "api-check-photos-resolution-zero": (lambda c: dk.check_photos(c["photos"], resolution=0),
                                         ["resolution=0", "at least 8"]),
    "api-check-photos-resolution-as-text": (lambda c: dk.check_photos(c["photos"],
                                                                      resolution="512"),
                                            ["resolution='512'", "whole number"]),
    "api-check-photos-missing-folder": (lambda c: dk.check_photos(c["tmp"] / "none"),
                                        ["does not exist"]),
    "api-fix-photos-into-the-photos": (lambda c: dk.fix_photos(_report(c), c["photos"] / "fix"),
                                       ["out=", "is inside the photo folder"]),
    "api-fix-photos-is-the-photos": (lambda c: dk.fix_photos(_report(c), c["photos"]),
                                     ["out=", "is the photo folder"]),
    "api-fix-photos-into-a-model": (lambda c: dk.fix_photos(_report(c), c["model"]),
                                    ["out=", "holds a model"]),
    "api-fix-photos-read-only": (lambda c: dk.fix_photos(_report(c), READ_ONLY),
                                 ["out=", "is not writable"]),
    "api-report-grid-among-the-photos": (lambda c: _report(c).grid(c["photos"] / "grid.png"),
                                         ["path=", "is inside the photo folder"]),
    "api-report-grid-not-a-picture": (lambda c: _report(c).grid(c["tmp"] / "grid.txt"),
                                      ["path=", ".png"]),
    # generating
    "api-generate-prompt-none": (lambda c: _gen(c, None), ["prompt=None", "say what to draw"]),
    "api-generate-prompt-empty": (lambda c: _gen(c, "  "), ["prompt='  '", "say what to draw"]),
    "api-generate-negative-prompt-number": (lambda c: _gen(c, negative_prompt=3),
                                            ["negative_prompt=3", "text"]),
    "api-generate-guidance-nan": (lambda c: _gen(c, guidance_scale=float("nan")),
                                  ["guidance_scale=nan", "finite"]),
    "api-generate-zero-images": (lambda c: _gen(c, num_images=0), ["num_images=0",
                                                                   "at least 1"]),
    "api-generate-steps-as-text": (lambda c: _gen(c, num_inference_steps="30"),
                                   ["num_inference_steps='30'", "whole number"]),
    "api-generate-device-this-machine-lacks": (
        lambda c: _gen(c, device="mps" if torch.cuda.is_available() else "cuda"),
        ["device=", "this machine has no"]),
    "api-generate-device-unknown": (lambda c: _gen(c, device="gpu"),
                                    ["device='gpu'", "'cuda', 'cpu'"]),
    "api-generate-missing-model": (lambda c: dk.generate(str(c["tmp"] / "none"), "a toy"),
                                   ["is not a folder"]),
    "api-output-folder-in-the-photos": (lambda c: output_folder(c["run"], "a toy",
                                                                c["photos"] / "gen"),
                                        ["out=", "is inside its photo folder"]),
    "api-try-model-prompt-none": (lambda c: try_model(c["run"], None, steps=1, count=1),
                                  ["prompt=None"]),
    # identifiers
    "api-check-identifier-none": (lambda c: dk.check_identifier(c["tok"], None),
                                  ["identifier=None", "one rare word"]),
    "api-check-identifier-tab": (lambda c: dk.check_identifier(c["tok"], "zs\tq"),
                                 ["identifier='zs\\tq'", "one rare word"]),
    "api-check-identifier-class-none": (lambda c: dk.check_identifier(c["tok"], "zshq", None),
                                        ["class_noun=None", "as text"]),
    "api-check-identifier-negative-suggestions": (
        lambda c: dk.check_identifier(c["tok"], "zshq", "dog", n_suggestions=-1),
        ["n_suggestions=-1", "at least 0"]),
    # the notebooks' faces
    "api-panel-unknown-field": (lambda c: _panel(fields=["identifier", "nonsense"]),
                                ["fields='nonsense'", "not a TrainConfig setting"]),
    "api-panel-fields-as-text": (lambda c: _panel(fields="identifier"),
                                 ["fields='identifier'", "list of setting names"]),
    "api-panel-config-as-dict": (lambda c: _panel(config={"max_train_steps": 10}),
                                 ["config='dict'", "TrainConfig"]),
    "api-notebook-form-steps-as-text": (lambda c: _form(c, steps="many"),
                                        ["max_train_steps='many'", "whole number"]),
    "api-notebook-form-rate-as-text": (lambda c: _form(c, learning_rate="1e-6"),
                                       ["learning_rate='1e-6'", "finite number"]),
    "api-notebook-form-weight-as-text": (lambda c: _form(c, prior_loss_weight="0.5"),
                                         ["prior_loss_weight='0.5'", "finite number"]),
    "api-notebook-form-identifier-two-words": (lambda c: _form(c, identifier="my dog"),
                                               ["identifier='my dog'", "one rare word"]),
    "api-class-images-into-a-model": (lambda c: dk.generate_class_images(
        None, "a photo of a toy", c["model"], 4), ["class_dir=", "holds a model"]),
    "api-class-images-empty-prompt": (lambda c: dk.generate_class_images(
        None, "", c["tmp"] / "cls", 4), ["class_prompt=", "non-empty prompts"]),
    "api-class-images-too-many": (lambda c: dk.generate_class_images(
        None, "a toy", c["tmp"] / "cls", 10**6), ["num_class_images=1000000", "at most"]),
    "api-notebook-knobs-as-text": (lambda c: _form(c, knobs="snr_gamma=5"),
                                   ["knobs='snr_gamma=5'", "dict of settings"]),
    "api-notebook-knob-misspelt": (lambda c: _form(c, knobs={"snr_gama": 5.0}),
                                   ["snr_gama=5.0", "not a TrainConfig setting"]),
    "api-notebook-knob-bad-value": (lambda c: _form(c, knobs={"noise_offset": -1}),
                                    ["noise_offset=-1", "0 or more"]),
    "api-demo-out-is-a-file": (lambda c: run_demo(c["tmp"] / "note.txt"), ["out=", "is a file"]),
    "api-plan-missing-model": (lambda c: plan(_config(c, pretrained_model_name_or_path=str(
        c["tmp"] / "none"))), ["pretrained_model_name_or_path=", "is not a folder"]),
}


def _snapshot(*folders) -> dict:
    return {p: p.stat().st_mtime_ns for f in folders for p in Path(f).rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_through_python(case, world, tmp_path, monkeypatch):
    if "read-only" in case and not sys_read_only():
        pytest.skip("this machine lets /sys be written, so no read-only folder is at hand")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "note.txt").write_text("a file where a folder belongs")
    c = {**world, "tmp": tmp_path}
    call, words = CASES[case]
    before = _snapshot(world["model"], world["run"], world["photos"])
    listed = set(world["photos"].rglob("*"))
    with pytest.raises(dk.DreamkitError) as e:
        call(c)
    line = str(e.value)
    assert len(line.splitlines()) == 1, line
    for w in words:
        assert w in line, (case, w, line)
    assert _snapshot(world["model"], world["run"], world["photos"]) == before
    assert set(world["photos"].rglob("*")) == listed, "something was written among the photos"


def test_the_notebooks_show_the_one_line(capsys):
    """`brief_errors`: in IPython a DreamkitError is its line, without a traceback."""
    ipython = pytest.importorskip("IPython")
    from IPython.testing.globalipapp import start_ipython

    from dreamkit.ui.notebook import brief_errors
    shell = start_ipython()
    assert ipython.get_ipython() is shell
    brief_errors()
    shell.run_cell("import dreamkit as dk; dk.TrainConfig(adam_weight_decay='0.01')")
    err = capsys.readouterr().err
    assert "✗ adam_weight_decay='0.01': must be a finite number" in err
    assert "Traceback" not in err


def test_the_docs_table_lists_every_python_case():
    text = DOC.read_text()
    table = text[text.index("## The Python API and the notebooks"):]
    rows = [line.split("|")[1].strip().strip("`") for line in table.splitlines()
            if line.startswith("| `")]
    assert sorted(rows) == sorted(CASES), set(rows) ^ set(CASES)
