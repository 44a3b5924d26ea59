"""benchmarks/peer.py runs diffusers' DreamBooth script and dreamkit side by side (measured in
benchmarks/RESULTS.md); here briefly, against a stand-in for the script (diffusers' examples
are not in its pip package) and with dreamkit's command checked as its CLI reads it."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAND_IN = ROOT / "tests" / "data" / "peer_stand_in.py"


def _peer():
    spec = importlib.util.spec_from_file_location("peer_bench", ROOT / "benchmarks" / "peer.py")
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    return peer


def test_peer_benchmark_alternates_runs_and_reports_ratios(tmp_path, monkeypatch):
    peer = _peer()
    classes = tmp_path / "classes"

    def prepare(root, model):  # photos and class images without drawing any
        from PIL import Image
        (root / "photos").mkdir()
        classes.mkdir()
        for i in range(3):
            Image.new("RGB", (64, 64), (i * 40, 0, 0)).save(root / "photos" / f"p{i}.png")
        for i in range(10):
            Image.new("RGB", (64, 64), (0, i * 20, 0)).save(classes / f"c{i}.png")
        return root / "photos", classes

    order = []

    real_peer = peer.peer_argv

    def stand_in_for_dreamkit(model, photos, classes, out, steps):  # dreamkit's run: timed
        order.append(("dreamkit", steps))
        return [sys.executable, str(STAND_IN)] + real_peer(STAND_IN, model, photos, classes,
                                                           out, steps)[5:]

    def peer_argv(script, model, photos, classes, out, steps):
        order.append(("peer", steps))
        return real_peer(script, model, photos, classes, out, steps)
    # the script run as it is (no torchvision stand-in needed by the stand-in script)
    monkeypatch.setattr(peer, "WRAPPER", "import runpy, sys; sys.argv = sys.argv[2:]; "
                                         "runpy.run_path(sys.argv[0], run_name='__main__')")
    monkeypatch.setattr(peer, "_prepare", prepare)
    monkeypatch.setattr(peer, "dreamkit_argv", stand_in_for_dreamkit)
    monkeypatch.setattr(peer, "peer_argv", peer_argv)
    r = peer.main(STAND_IN, steps=(1, 5), rounds=2, model="toy")
    # a first run of each, then per round each step count, peer and dreamkit alternated
    assert order == [("peer", 1), ("dreamkit", 1)] + [(who, s) for _ in range(2)
                                                      for s in (1, 5)
                                                      for who in ("peer", "dreamkit")]
    for who in ("peer", "dreamkit"):
        assert all(len(v) == 2 and v[0] > 0 for v in r["seconds"][who].values())
        assert r["median"][who][5] > r["median"][who][1]  # the stand-in sleeps 10 ms a step
    assert r["speedup_end_to_end"][1] == r["median"]["peer"][1] / r["median"]["dreamkit"][1]
    assert r["speedup_per_step"] == r["per_step"]["peer"] / r["per_step"]["dreamkit"]


def test_the_dreamkit_side_is_the_same_run_as_the_peers(tiny_model, tmp_path, monkeypatch):
    """dreamkit's command line, read by its own CLI: the peer's settings, checked."""
    from dreamkit.ui.cli import build_parser
    from dreamkit.ui.commands import config_from
    peer = _peer()
    (tmp_path / "photos").mkdir()
    argv = peer.dreamkit_argv(str(tiny_model), tmp_path / "photos", tmp_path / "classes",
                              tmp_path / "out", 40)
    assert argv[:3] == [sys.executable, "-m", "dreamkit"]
    cfg = config_from(build_parser().parse_args(argv[3:]), ready=False)
    assert (cfg.max_train_steps, cfg.resolution, cfg.train_batch_size) == (40, 64, 1)
    assert cfg.with_prior_preservation and cfg.num_class_images == 10
    assert (cfg.instance_prompt, cfg.class_prompt) == (peer.PROMPT, peer.CLASS_PROMPT)
    assert (cfg.learning_rate, cfg.seed, cfg.mixed_precision) == (2e-4, 0, "no")
    assert not cfg.use_captions and cfg.checkpointing_steps == 0
    assert cfg.num_sample_images == 0  # the peer draws no validation pictures either
    theirs = peer.peer_argv(Path("s.py"), str(tiny_model), tmp_path / "photos",
                            tmp_path / "classes", tmp_path / "o", 40)
    flag = dict(zip(theirs[5::1], theirs[6::1]))
    assert (flag["--max_train_steps"], flag["--resolution"], flag["--learning_rate"]) == \
        ("40", "64", "2e-4")
