"""The house: each decision made in one place, the old module names still importable, no
silent path (unknown events, unreadable models, print defaults)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from dreamkit import TrainConfig

PACKAGE = Path(__file__).resolve().parents[1] / "dreamkit"

# What the notebooks imported before the layers (2026-12): notebooks saved on Drive still say it
SAVED_NOTEBOOK_IMPORTS = """
from dreamkit import ProgressBar, train
from dreamkit.classroom import Classroom
from dreamkit.cli import main as dreamkit_command
from dreamkit.data import find_images, load_image
from dreamkit.doctor import check_photos
from dreamkit.env import device, inference_dtype
from dreamkit.env import format_env_report
from dreamkit.env import mount_drive, upload_photos
from dreamkit.errors import DreamkitError
from dreamkit.live import LiveView
from dreamkit.models import load_pipeline, load_tokenizer
from dreamkit.notebook import MODELS, notebook_config, brief_errors, caption_editor
from dreamkit.notebook import is_sdxl_model, try_model
from dreamkit.planner import plan, T4_SETTINGS
from dreamkit.prior import generate_class_images
from dreamkit.sample import generate, sample_rows
from dreamkit.scoring import ScoreCallback, plot_scores
from dreamkit.space import free_space, run_sizes_text, sizes_text
from dreamkit.tokens import check_identifier
from dreamkit.toy import base_model_dir, write_subject_photos
from dreamkit.toy.scorer import choose_scorer, evaluate_toy
from dreamkit.toy.world import pretraining_example
from dreamkit.viewer import image_grid, show_grid
import dreamkit
print(dreamkit.planner.plan is plan, dreamkit.env.mount_drive is mount_drive,
      callable(dreamkit.train), dreamkit.config.knob_help("prior_loss_weight") != "")
"""


def test_saved_notebooks_imports_still_work():
    """In a fresh process, as a saved notebook's kernel would run them."""
    r = subprocess.run([sys.executable, "-c", SAVED_NOTEBOOK_IMPORTS], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["True"] * 4


def test_import_dreamkit_loads_no_torch():
    r = subprocess.run([sys.executable, "-c", "import sys, dreamkit; "
                        "print('torch' in sys.modules, dreamkit.TrainConfig.__name__)"],
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.split() == ["False", "TrainConfig"], r.stderr[-2000:]


def _functions_named(name: str) -> list:
    """Modules defining a module-level function `name` (a method may delegate to it)."""
    return [f"{p.relative_to(PACKAGE)}" for p in PACKAGE.rglob("*.py")
            for n in ast.parse(p.read_text()).body
            if isinstance(n, ast.FunctionDef) and n.name == name]


def _source_mentions(text: str) -> list:
    """Shipped modules whose source holds `text` (testing.py builds models: not a decision)."""
    return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                  if p.name != "testing.py" and text in p.read_text())


def test_each_decision_lives_in_one_function():
    # step_mode='auto': settled by the settings, else by the planned peaks
    assert _functions_named("settled_step_mode") == ["training/step.py"]
    assert _source_mentions('step_mode != "auto"') == ["training/step.py"]
    # SDXL or not
    assert _functions_named("is_sdxl") == ["models/sdxl.py"]
    assert _source_mentions('"text_time"') == ["models/sdxl.py"]
    # mixed precision: who scales the loss, autocast's cache, dtypes
    for spelling in ('mixed_precision == "fp16"', 'mixed_precision != "no"',
                     'mixed_precision in ("fp16", "bf16")'):
        assert _source_mentions(spelling) in ([], ["core/precision.py"]), spelling
    # the folder rule, the whole-number and seed checks: core/checks.py
    assert _functions_named("not_inside") == ["core/checks.py"]
    assert _source_mentions("SEED_MAX = ") == ["core/checks.py"]
    # the prior rule: TrainConfig only
    assert _source_mentions("prior_weight_error(") == ["core/validate.py"]
    # the recipes: one table
    assert _source_mentions("SDXL_SETTINGS = ") == ["planning/recipes.py"]
    assert _source_mentions("T4_SETTINGS = ") == ["planning/recipes.py"]


def test_precision_decisions():
    fp16_t4 = TrainConfig(mixed_precision="fp16", optimizer_in_backward=True,
                          gradient_checkpointing=True).precision
    assert fp16_t4.dreamkit_scales_loss and not fp16_t4.autocast_cache
    assert fp16_t4.arithmetic == "fp16" and fp16_t4.bytes_per_value == 2
    bf16 = TrainConfig(mixed_precision="bf16").precision
    assert bf16.mixed and not bf16.dreamkit_scales_loss and bf16.autocast_cache
    fp32 = TrainConfig().precision
    assert not fp32.mixed and fp32.arithmetic == "fp32" and fp32.bytes_per_value == 4
    import torch
    assert (fp16_t4.frozen_dtype(), bf16.frozen_dtype(), fp32.frozen_dtype()) == \
        (torch.float16, torch.bfloat16, torch.float32)


def test_step_mode_auto_is_settled_by_settings_or_left_to_the_plan():
    from dreamkit.training.step import choose_step_mode, settled_step_mode
    assert settled_step_mode(TrainConfig(step_mode="two_pass"))[0] == "two_pass"
    assert settled_step_mode(TrainConfig())[0] == "one_pass"  # no prior: one batch
    prior = TrainConfig(with_prior_preservation=True, class_noun="dog")
    assert settled_step_mode(prior) is None  # left to the peaks
    assert settled_step_mode(prior.replace(optimizer_in_backward=True))[0] == "one_pass"

    class Plan:
        step_mode, step_mode_reason = "two_pass", "two passes lower the peak by 9%"
    assert choose_step_mode(prior, Plan()) == ("two_pass", "two passes lower the peak by 9%")
    assert choose_step_mode(prior)[0] == "one_pass"


def test_is_sdxl_from_every_kind_of_thing(tiny_model, tmp_path):
    from dreamkit.models.sdxl import is_sdxl
    from dreamkit.testing import make_tiny_sdxl
    xl = make_tiny_sdxl(tmp_path / "tiny-xl")
    assert is_sdxl(str(xl)) and not is_sdxl(str(tiny_model))
    assert is_sdxl({"addition_embed_type": "text_time"}) and not is_sdxl({})
    assert is_sdxl("stabilityai/stable-diffusion-xl-base-1.0")  # unreadable id: its name
    assert not is_sdxl("stable-diffusion-v1-5/stable-diffusion-v1-5")


def test_an_unknown_event_raises_instead_of_reaching_no_callback():
    from dreamkit.core.callbacks import Callback, Events
    events = Events([])
    events.on_step(None)  # a real event: fine with no callbacks
    with pytest.raises(AttributeError, match="'on_stpe' is not a callback event"):
        events.on_stpe(None)

    class Misspelled(Callback):
        def on_stpe(self, info): ...
    with pytest.raises(AttributeError, match="Misspelled.on_stpe is not a callback event"):
        Events([Misspelled()])


def test_a_plan_of_a_model_it_cannot_read_says_what_it_assumed():
    from dreamkit.planning.planner import plan
    p = plan(TrainConfig(pretrained_model_name_or_path="nobody/no-such-model",
                         use_lora=True, gradient_checkpointing=True, resolution=256),
             suggest=False)
    first = p.text().splitlines()[0]
    assert first.startswith("assumed SD 1.5") and "'nobody/no-such-model' could not be read" \
        in first and "offline" in first


def test_an_unreachable_hub_is_said_at_once_not_after_minutes_of_retries(tmp_path):
    """Without network (and without HF_HUB_OFFLINE), huggingface_hub retries every file with
    backoff: four minutes before `check-token` with its default hub id failed, measured. A hub
    that refuses the connection stands in for it here (HF_ENDPOINT on a closed local port)."""
    import os
    import time
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"))
    said = "the model hub cannot be reached from here"
    for argv, code, then in (
            (["check-token", "zshq"], 2, "its tokenizer could not be loaded"),
            (["plan-memory", "--pretrained_model_name_or_path", "nobody/no-such-model",
              "--use_lora", "--gradient_checkpointing", "--resolution", "256"], 0,
             "assumed SD 1.5")):
        start = time.time()
        run = subprocess.run([sys.executable, "-m", "dreamkit", *argv], capture_output=True,
                             text=True, env=env, timeout=120)
        assert time.time() - start < 30, (argv, time.time() - start)
        assert run.returncode == code, (argv, run.stdout[-1500:], run.stderr[-1500:])
        assert said in run.stderr and then in run.stdout + run.stderr, (argv, run.stderr[-1500:])
        assert "Traceback" not in run.stderr


def test_the_hub_probe_says_yes_to_a_listening_hub_no_to_a_closed_port(monkeypatch):
    """Online (Colab), nothing changes: the probe connects and dreamkit stays online."""
    import socket

    from huggingface_hub import constants

    from dreamkit.models import source
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    for name in source.PROXIES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setattr(source, "_PROBED", {})
    assert source.hub_reachable()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert source.offline_if_hub_unreachable("some/model", report=print) is False
    server.close()
    monkeypatch.setattr(source, "_PROBED", {})
    assert not source.hub_reachable()  # refused
    monkeypatch.setattr(source, "_PROBED", {})
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
    assert source.hub_reachable()  # behind a proxy, only the proxy knows
