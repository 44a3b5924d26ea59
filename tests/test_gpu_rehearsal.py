"""benchmarks/gpu.py, the rehearsal for a lent GPU, runs its whole path on the CPU with --tiny:
every recipe trains through dreamkit.train, with the planner's figures beside it."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_rehearsal_runs_every_recipe_with_tiny_models(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.chdir(tmp_path)
    import gpu  # benchmarks/gpu.py

    from dreamkit.planning.planner import RECIPES

    out = tmp_path / "gpu.json"
    assert gpu.main(["--tiny", "--steps", "4", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [r["recipe"] for r in rows[:-1]] == list(RECIPES) and "SDXL" in rows[-1]["recipe"]
    for r in rows:
        assert "error" not in r, r
        assert r["steps_run"] == 4 and r["s_per_step"] > 0, r
        assert r["planned_gib"] > 0 and r["flops_per_step"] > 0 and r["t4_time_floor_s"] > 0, r
    printed = capsys.readouterr().out
    assert "| recipe | planned GiB (T4) |" in printed and printed.count("\n|") >= len(rows) + 1
    assert not list(tmp_path.glob("*/model_index.json"))  # the models lived in a temp folder
    sys.modules.pop("gpu", None)


def test_gpu_rehearsal_says_what_to_do_without_a_gpu(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main([]) == 2
    assert "run with --tiny" in capsys.readouterr().err
