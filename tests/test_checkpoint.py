"""Checkpoints: atomic writes, damaged ones skipped, exact resume (in process and after SIGKILL)."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from dreamkit import DreamkitError, FunctionCallback, TrainConfig, train
from dreamkit.storage.checkpoint import (
    TrainingState,
    find_checkpoints,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


def _config(tiny_model, photos, out, **kw):
    base = dict(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                class_noun="toy", with_prior_preservation=True, num_class_images=3,
                sample_batch_size=3, class_inference_steps=2, resolution=32, max_train_steps=8,
                learning_rate=1e-3, output_dir=str(out), sample_steps=2, num_sample_images=1,
                checkpointing_steps=3, checkpoints_total_limit=2, lr_scheduler="cosine",
                train_batch_size=2, keep_checkpoints=True)  # these tests look at them after

    base.update(kw)
    return TrainConfig(**base)


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _small_state():
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, gamma=0.5)
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    sched.step()
    return model, opt, sched


def test_round_trip_restores_weights_optimizer_scheduler_and_rngs(tmp_path):
    model, opt, sched = _small_state()
    torch.manual_seed(5), random.seed(5), np.random.seed(5)
    save_checkpoint(tmp_path, {"unet": model}, opt, sched, None,
                    TrainingState(3, 1, 2, [{"step": 3}]), '{"seed": 0}')
    expected = (torch.rand(3), random.random(), np.random.rand())
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt.step == 3 and ckpt.path.name == "step_000003"

    other, opt2, sched2 = _small_state()
    torch.manual_seed(99), random.seed(99), np.random.seed(99)
    state = load_checkpoint(ckpt, {"unet": other}, opt2, sched2, None)
    assert (state.step, state.epoch, state.batch_index, state.history) == (3, 1, 2, [{"step": 3}])
    assert _same(other.state_dict(), model.state_dict())
    assert _same(opt2.state_dict()["state"][0], opt.state_dict()["state"][0])
    assert sched2.state_dict() == sched.state_dict()
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(again[0], expected[0]) and again[1:] == expected[1:]
    torch.manual_seed(0)


def test_interrupted_write_leaves_the_previous_checkpoint_usable(tmp_path, monkeypatch):
    model, opt, sched = _small_state()
    save_checkpoint(tmp_path, {"unet": model}, opt, sched, None, TrainingState(2, 0, 2, []), "{}")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    real_save = torch.save

    def dying_save(obj, f, *a, **k):  # the session ends while state.pt is being written
        if "rng" in obj:
            f.write(b"half a file")
            raise KeyboardInterrupt("disconnected")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, {"unet": model}, opt, sched, None,
                        TrainingState(4, 0, 4, []), "{}")
    monkeypatch.undo()
    assert (tmp_path / "checkpoints" / ".tmp-step_000004").is_dir()  # the half-written one
    ckpt = latest_checkpoint(tmp_path)
    assert ckpt.step == 2
    fresh, opt2, sched2 = _small_state()
    load_checkpoint(ckpt, {"unet": fresh}, opt2, sched2, None)
    assert _same(fresh.state_dict(), before)


def test_damaged_checkpoint_is_skipped_with_a_message(tmp_path):
    model, opt, sched = _small_state()
    for step in (2, 4):
        save_checkpoint(tmp_path, {"unet": model}, opt, sched, None,
                        TrainingState(step, 0, step, []), "{}", keep=0)
    weights = tmp_path / "checkpoints" / "step_000004" / "trained.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])  # truncated by a full Drive
    said = []
    assert [c.step for c in find_checkpoints(tmp_path, report=said.append)] == [2]
    assert "step_000004" in said[0] and "trained.safetensors has 50 bytes" in said[0]


def test_keeps_only_the_newest_checkpoints(tmp_path):
    model, opt, sched = _small_state()
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, {"unet": model}, opt, sched, None,
                        TrainingState(step, 0, step, []), "{}", keep=2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == \
        ["step_000003", "step_000004"]


def test_full_disk_fails_before_writing(tmp_path, monkeypatch):
    import shutil
    model, opt, sched = _small_state()
    save_checkpoint(tmp_path, {"unet": model}, opt, sched, None, TrainingState(1, 0, 1, []), "{}")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 1000))
    with pytest.raises(DreamkitError, match="GiB free but the checkpoint needs.*Nothing of "
                                            "this checkpoint was written"):
        save_checkpoint(tmp_path, {"unet": model}, opt, sched, None,
                        TrainingState(2, 0, 2, []), "{}")
    assert [c.step for c in find_checkpoints(tmp_path)] == [1]


def test_drive_errors_are_reported_plainly(tmp_path, monkeypatch):
    import errno
    model, opt, sched = _small_state()
    save_checkpoint(tmp_path, {"unet": model}, opt, sched, None, TrainingState(1, 0, 1, []), "{}")
    real_save = torch.save

    def quota(obj, f, *a, **k):
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(torch, "save", quota)
    with pytest.raises(DreamkitError, match="step 2 .*Disk quota exceeded.*The checkpoint of "
                                            "step 1 is intact.*resume='auto'"):
        save_checkpoint(tmp_path, {"unet": model}, opt, sched, None,
                        TrainingState(2, 0, 2, []), "{}")
    with pytest.raises(DreamkitError, match="step 1 .*No checkpoint was written before: .*"
                                            "start again"):  # none to speak of: not "intact"
        save_checkpoint(tmp_path / "fresh", {"unet": model}, opt, sched, None,
                        TrainingState(1, 0, 1, []), "{}")
    monkeypatch.setattr(torch, "save", real_save)
    assert [c.step for c in find_checkpoints(tmp_path)] == [1]


class _Stop(Exception):
    pass


def _stop_at(step):
    def on_step(info):
        if info.step == step:
            raise _Stop
    return FunctionCallback(on_step=on_step)


@pytest.mark.parametrize("extra", [{}, {"train_text_encoder": True, "text_encoder_steps": 4,
                                        "gradient_accumulation_steps": 2},
                                   {"use_lora": True, "train_text_encoder": True,
                                    "learning_rate": 1e-2},
                                   # the field's knobs (docs/knobs.md): flips, noise offset and
                                   # Min-SNR draw or weigh by step; Prodigy keeps its own state
                                   {"optimizer": "prodigy", "learning_rate": 1.0,
                                    "random_flip": True, "noise_offset": 0.1, "snr_gamma": 5.0,
                                    "use_lora": True, "use_dora": True, "repeats": 2,
                                    "lr_scheduler": "cosine_with_restarts", "lr_num_cycles": 2}])
def test_interrupted_and_resumed_run_ends_with_the_same_weights(extra, tiny_model, photos,
                                                                tmp_path):
    whole = train(_config(tiny_model, photos, tmp_path / "whole", **extra), callbacks=[])
    cfg = _config(tiny_model, photos, tmp_path / "cut", **extra)
    with pytest.raises(_Stop):
        train(cfg, callbacks=[_stop_at(5)])  # dies after step 5; newest checkpoint: step 3
    with pytest.raises(DreamkitError, match="unfinished run .*step 3.*resume='auto'"):
        train(cfg, callbacks=[])
    resumed = train(cfg.replace(resume="auto"), callbacks=[])
    assert _same(resumed.unet.state_dict(), whole.unet.state_dict())
    if extra.get("train_text_encoder"):
        assert _same(resumed.text_encoder.state_dict(), whole.text_encoder.state_dict())
    assert [h["step"] for h in resumed.history] == list(range(1, 9))
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    # A finished run is not trained again by accident.
    with pytest.raises(DreamkitError, match="finished at step 8; raise max_train_steps"):
        train(cfg.replace(resume="auto"), callbacks=[])


def test_text_encoder_trains_then_freezes(tiny_model, photos, tmp_path):
    from dreamkit.models.loading import load_components
    base = load_components(str(tiny_model)).text_encoder.state_dict()
    snaps = {}
    cfg = _config(tiny_model, photos, tmp_path / "te", train_text_encoder=True,
                  text_encoder_steps=3, checkpointing_steps=1, checkpoints_total_limit=0,
                  step_mode="two_pass", text_encoder_lr=5e-3)
    result = train(cfg, callbacks=[])
    for c in find_checkpoints(tmp_path / "te"):
        from safetensors.torch import load_file
        w = load_file(str(c.path / "trained.safetensors"))
        snaps[c.step] = {k[len("text_encoder."):]: v for k, v in w.items()
                         if k.startswith("text_encoder.")}
    assert not _same(snaps[1], base) and not _same(snaps[3], snaps[2])
    assert _same(snaps[8], snaps[3])  # frozen after text_encoder_steps
    assert _same(result.text_encoder.state_dict(), snaps[8])


def test_nan_loss_stops_with_the_cause_and_keeps_the_checkpoint(tiny_model, photos, tmp_path):
    cfg = _config(tiny_model, photos, tmp_path / "nan", learning_rate=1e30, max_grad_norm=1e30,
                  adam_epsilon=1e-30, with_prior_preservation=False, checkpointing_steps=1)
    with pytest.raises(DreamkitError, match=r"loss became (nan|inf) at step (\d+) .*learning_rate"
                                            r".*last good checkpoint \(step \d+\) is kept") as e:
        train(cfg, callbacks=[])
    failed = int(re.search(r"at step (\d+)", str(e.value)).group(1))
    kept = find_checkpoints(tmp_path / "nan")
    assert kept and kept[-1].step == failed - 1  # nothing was saved after the bad step
    assert not (tmp_path / "nan" / "model_index.json").exists()


def _cli(cfg_path, *extra):
    return [sys.executable, "-m", "dreamkit", "train", "--config", str(cfg_path), *extra]


@pytest.fixture(scope="module")
def forked():
    """Training processes started by forking one that made the imports (tests/forked.py)."""
    from forked import Forked
    with Forked({**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}) as helper:
        yield helper


def test_sigkill_at_random_moments_then_resume_matches(tiny_model, photos, tmp_path, forked):
    """Kill a real training process at random moments (even mid-checkpoint), resume each time;
    the last resume is a `python -m dreamkit train` of its own."""
    steps = 12
    cfg = _config(tiny_model, photos, tmp_path / "killed", max_train_steps=steps,
                  checkpointing_steps=1, resume="auto", sample_every=0)
    cfg_path = cfg.save(tmp_path / "killed.json")
    # the uninterrupted reference runs here (a process start is ~7 s of imports), on one
    # thread as the killed runs do (OMP_NUM_THREADS below), so the sums add up alike
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg.replace(output_dir=str(tmp_path / "reference"), resume=""), callbacks=[])
    finally:
        torch.set_num_threads(threads)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

    rng = random.Random(7)
    ckdir = tmp_path / "killed" / "checkpoints"
    kills = []
    for n in range(3):
        done = latest_checkpoint(tmp_path / "killed", report=lambda m: None)
        target = (done.step if done else 0) + rng.randint(1, 3)
        pid = forked.start(["train", "--config", cfg_path], log=tmp_path / f"killed-{n}.log")
        deadline, ended = time.time() + 300, None
        while time.time() < deadline and ended is None:
            if any(p.name >= f"step_{target:06d}" for p in ckdir.glob("step_*")):
                break
            time.sleep(0.02)
            ended = forked.poll(pid)
        if not kills and ended is None:  # a second run on the folder is refused
            with pytest.raises(DreamkitError, match=f"in use by another training run "
                                                    f"\\(process {pid} on "):
                train(cfg, callbacks=[])
        time.sleep(rng.uniform(0.0, 0.3))  # somewhere in the next step or checkpoint write
        if ended is None:
            os.kill(pid, signal.SIGKILL)
            assert forked.wait(pid) == -signal.SIGKILL, (tmp_path / f"killed-{n}.log").read_text()
        kills.append(target)
    r = subprocess.run(_cli(cfg_path), env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming from step" in r.stdout
    assert f"taking over .dreamkit-run.lock of a run that is gone (process {pid}" in \
        r.stdout + r.stderr  # the killed run's lock: taken over with a message
    assert not (tmp_path / "killed" / ".dreamkit-run.lock").exists()  # released at the end
    from safetensors.torch import load_file
    a = load_file(str(tmp_path / "killed" / "unet" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(tmp_path / "reference" / "unet" / "diffusion_pytorch_model.safetensors"))
    assert _same(a, b), f"weights differ after kills at {kills}"
    history = json.loads((tmp_path / "killed" / "history.json").read_text())
    assert [h["step"] for h in history] == list(range(1, steps + 1))


def test_a_damaged_checkpoint_is_found_by_content_and_the_one_before_is_used(tiny_model,
                                                                             photos, tmp_path):
    """Damage that keeps the size (bit rot, a bad copy): the SHA-256 written with the file
    catches it on resume, the previous checkpoint is used, the weights end up the same."""
    kw = dict(lr_scheduler="constant", checkpointing_steps=1, checkpoints_total_limit=0,
              sample_every=0)
    ref = train(_config(tiny_model, photos, tmp_path / "ref", max_train_steps=4, **kw),
                callbacks=[])
    train(_config(tiny_model, photos, tmp_path / "run", max_train_steps=3, **kw), callbacks=[])
    weights = tmp_path / "run" / "checkpoints" / "step_000003" / "trained.safetensors"
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0xFF  # one byte of a tensor, the size unchanged
    weights.write_bytes(bytes(data))
    said = []
    resumed = train(_config(tiny_model, photos, tmp_path / "run", max_train_steps=4,
                            resume="auto", **kw), callbacks=[FunctionCallback(on_message=said.append)])
    assert any("skipping checkpoint step_000003: trained.safetensors is damaged (its SHA-256"
               in m for m in said), said
    assert any(m.startswith("resuming from step 2 of 4") for m in said), said
    assert _same(resumed.unet.state_dict(), ref.unet.state_dict())


def test_a_kill_while_pruning_is_cleaned_up_and_diffusers_checkpoint_names_resume(
        tiny_model, photos, tmp_path):
    from dreamkit.ui.cli import main
    cfg = _config(tiny_model, photos, tmp_path / "run", max_train_steps=2, checkpointing_steps=1,
                  checkpoints_total_limit=1, lr_scheduler="constant", sample_every=0)
    train(cfg, callbacks=[])
    root = tmp_path / "run" / "checkpoints"
    assert [p.name for p in root.iterdir()] == ["step_000002"]
    # what a kill leaves: mid-prune (renamed to trash, not yet deleted) and mid-write
    shutil.copytree(root / "step_000002", root / ".trash-step_000001")
    (root / ".tmp-step_000003").mkdir()
    said = []
    train(cfg.replace(max_train_steps=3, resume="checkpoint-2"),  # diffusers' name
          callbacks=[FunctionCallback(on_message=said.append)])
    assert any(m.startswith("resuming from step 2 of 3") for m in said), said
    assert sorted(p.name for p in root.iterdir()) == ["step_000003"]
    config = tmp_path / "run" / "config.json"  # and diffusers' flag on the command line
    assert main(["train", "--config", str(config), "--max_train_steps", "4",
                 "--resume_from_checkpoint", "checkpoint-3"]) == 0
    assert json.loads((tmp_path / "run" / "history.json").read_text())[-1]["step"] == 4
    assert main(["train", "--config", str(config), "--max_train_steps", "5",
                 "--resume_from_checkpoint", "checkpoint-9"]) == 2  # no such checkpoint


def test_a_full_disk_at_the_final_save_is_one_line_and_leaves_no_half_model(tiny_model, photos,
                                                                              tmp_path, forked):
    """`ulimit -f`: every file above 1 MB fails to write, like a full Drive (the tiny UNet is
    4 MB); the checkpoints stay, no model_index.json, no half-written folder."""
    cfg = _config(tiny_model, photos, tmp_path / "run", max_train_steps=2, checkpointing_steps=0,
                  lr_scheduler="constant", sample_every=0, with_prior_preservation=False,
                  train_batch_size=1)
    path = cfg.save(tmp_path / "cfg.json")
    log = tmp_path / "train.log"  # what the command printed, stdout and stderr
    pid = forked.start(["train", "--config", path], log=log, max_file_bytes=2**20)
    assert forked.wait(pid) == 2, log.read_text()[-2000:]
    said = log.read_text()
    errors = [line for line in said.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in said, said[-2000:]
    assert "saving the final model into" in errors[0] and "File too large" in errors[0]
    run = tmp_path / "run"
    assert not (run / "model_index.json").exists() and not (run / ".tmp-model").exists()


def test_non_finite_weights_after_the_last_step_are_not_saved(tiny_model, photos, tmp_path,
                                                              monkeypatch):
    """An update can overflow after the last finite loss (the loss check cannot see it):
    simulated by an optimizer whose last update writes inf into one weight."""
    step = torch.optim.AdamW.step

    def overflowing(self, *a, **kw):
        out = step(self, *a, **kw)
        self.param_groups[0]["params"][0].data.fill_(float("inf"))
        return out
    monkeypatch.setattr(torch.optim.AdamW, "step", overflowing)
    cfg = _config(tiny_model, photos, tmp_path / "run", max_train_steps=1, checkpointing_steps=0,
                  lr_scheduler="constant", with_prior_preservation=False,
                  train_batch_size=1, sample_every=0)
    with pytest.raises(DreamkitError, match="trained tensor.*NaN or infinite.*no model was saved"):
        train(cfg, callbacks=[])
    assert not (tmp_path / "run" / "model_index.json").exists()


def test_diffusers_test_dreambooth_checkpoint_scenarios_on_the_cli(tiny_model, tmp_path):
    """diffusers' examples/dreambooth/test_dreambooth.py, replayed: checkpoint every 2 of 4
    steps, resume from a checkpoint to 6 steps, total-limit pruning of one and of several.
    The one difference is by decision: dreamkit names checkpoints checkpoints/step_00000N (and
    accepts diffusers' checkpoint-N when resuming)."""
    from dreamkit.ui.cli import main
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        Image.new("RGB", (64, 64), (60 * i, 90, 200)).save(imgs / f"{i}.png")
    out = tmp_path / "out"
    common = ["train", "--pretrained_model_name_or_path", str(tiny_model), "--instance_data_dir",
              str(imgs), "--instance_prompt", "photo", "--resolution", "64",
              "--train_batch_size", "1", "--gradient_accumulation_steps", "1",
              "--learning_rate", "5.0e-04", "--scale_lr", "--lr_scheduler", "constant",
              "--lr_warmup_steps", "0", "--output_dir", str(out), "--sample_steps", "1",
              "--num_sample_images", "1"]
    steps = lambda: sorted(p.name for p in (out / "checkpoints").iterdir())  # noqa: E731
    common += ["--keep_checkpoints", "true"]  # as diffusers' script does: kept after the end
    assert main(common + ["--max_train_steps", "4", "--checkpointing_steps", "2",
                          "--checkpoints_total_limit", "0"]) == 0
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    assert steps() == ["step_000002", "step_000004"]
    assert main(common + ["--max_train_steps", "6", "--checkpointing_steps", "2",
                          "--checkpoints_total_limit", "0", "--resume_from_checkpoint",
                          "checkpoint-4"]) == 0
    assert steps() == ["step_000002", "step_000004", "step_000006"]
    assert json.loads((out / "history.json").read_text())[-1]["step"] == 6
    # total limit: one kept, then several pruned at once
    assert main(common + ["--max_train_steps", "6", "--checkpointing_steps", "2",
                          "--checkpoints_total_limit", "1", "--overwrite"]) == 0
    assert steps() == ["step_000006"]
    assert main(common + ["--max_train_steps", "10", "--checkpointing_steps", "2",
                          "--checkpoints_total_limit", "0", "--resume_from_checkpoint",
                          "latest"]) == 0
    assert steps() == ["step_000006", "step_000008", "step_000010"]
    assert main(common + ["--max_train_steps", "12", "--checkpointing_steps", "2",
                          "--checkpoints_total_limit", "1", "--resume_from_checkpoint",
                          "latest"]) == 0
    assert steps() == ["step_000012"]


def test_a_finished_run_leaves_the_model_alone_and_half_size_when_asked(tiny_model, photos,
                                                                         tmp_path):
    """Drive's budget: the checkpoints go once the model is saved (said, with the space freed),
    a later resume says why it cannot train on; save_precision='fp16' halves the weights on
    disk and diffusers still loads them (as fp32)."""
    from diffusers import UNet2DConditionModel
    from safetensors import safe_open
    said = []
    cfg = _config(tiny_model, photos, tmp_path / "run", max_train_steps=2, checkpointing_steps=1,
                  keep_checkpoints=False, save_precision="fp16", with_prior_preservation=False)
    train(cfg, callbacks=[FunctionCallback(on_message=said.append)])
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert any(m.startswith("removed the checkpoints (") and "keep_checkpoints=True" in m
               for m in said), said
    with pytest.raises(DreamkitError, match="checkpoints were removed .*keep_checkpoints"):
        train(cfg.replace(resume="auto", max_train_steps=4), callbacks=[])
    weights = tmp_path / "run" / "unet" / "diffusion_pytorch_model.safetensors"
    with safe_open(str(weights), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float16}
    base = (tiny_model / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size
    assert weights.stat().st_size < 0.55 * base
    assert UNet2DConditionModel.from_pretrained(tmp_path / "run" / "unet").dtype == torch.float32
    # the CPU path (mixed_precision 'no') keeps fp32 by default
    assert cfg.replace(save_precision="auto").final_dtype == "fp32"
    assert cfg.replace(save_precision="auto", mixed_precision="fp16").final_dtype == "fp16"
