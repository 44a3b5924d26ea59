"""Issue 9: two subjects in one run of the toy world, each prompt draws its own subject (a
file of its own so that it runs beside the demo's file under pytest-xdist)."""

import pytest

from dreamkit.models.loading import load_pipeline
from dreamkit.toy.scorer import evaluate_subjects


@pytest.mark.slow
def test_two_subjects_in_one_run_each_prompt_gets_its_own(tmp_path):
    """Issue 9: two subjects (sks: magenta/cyan disc, zwx: orange/lime disc), each with its own
    captioned photos, one run with prior preservation (demo settings: UNet + text encoder)."""
    from dreamkit.toy import write_subject_photos
    from dreamkit.toy.demo import demo_config
    from dreamkit.training.loop import train

    for ident in ("sks", "zwx"):
        write_subject_photos(tmp_path / ident, identifier=ident)
    # One photo a step at lr 2e-4 (the demo's recipe until 2026-12-03; it now takes three): with
    # two a step, zwx was drawn in 2-3 pictures of 24 at seed 0 (0.083 at lr 2e-4, 0.125 at
    # 3e-4) against 7 with one a step (0.292); sks in 22-23 either way (benchmarks/RESULTS.md).
    # Three a step was not tried with two subjects.
    config = demo_config(tmp_path, tmp_path / "sks").replace(
        instance_dir="", concepts=[{"instance_dir": str(tmp_path / i), "identifier": i} for i in ("sks", "zwx")],
        checkpointing_steps=0, sample_every=0, train_batch_size=1, learning_rate=2e-4,
        num_sample_images=0)  # no end-of-run samples: the measure below draws its own
    result = train(config, callbacks=[])
    r = evaluate_subjects(load_pipeline(str(result.model_dir)))
    for own, other in (("sks", "zwx"), ("zwx", "sks")):
        shows = r[own]["shows"]
        # each identifier draws its own subject, and not the other one
        assert shows[own] >= 0.15 and shows[other] <= 0.05, r
        assert r[own]["colour_share"][own] > 3 * r[own]["colour_share"][other], r
        assert r[own]["prompt_fidelity"] >= 0.8, r  # and the context words still steer
