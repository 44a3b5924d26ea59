"""The classroom's toy world works on other training seeds too: the seeds that came out lowest
of five (benchmarks/RESULTS.md) meet the same targets as seed 0 (tests/test_toy_demo.py). A
file of its own, so that it runs beside test_toy_demo.py under pytest-xdist."""

import pytest

from dreamkit.demo import run_demo
from test_toy_demo import assert_classroom_targets

# Seed 1: the lowest subject fidelity with prior preservation (0.833, with seed 2) and the lowest
# class drift without it (0.208) of training seeds 0-4
WORST_WITH_PRIOR = WORST_WITHOUT = 1


@pytest.mark.slow
def test_the_lowest_seed_with_prior_preservation_meets_the_targets(tmp_path):
    s = run_demo(tmp_path / "prior", seed=WORST_WITH_PRIOR)
    assert s["seed"] == WORST_WITH_PRIOR
    assert_classroom_targets(s["after"], None)


@pytest.mark.slow
def test_the_lowest_seed_without_prior_preservation_drifts(tmp_path):
    s = run_demo(tmp_path / "no-prior", seed=WORST_WITHOUT, with_prior_preservation=False)
    # The ">= 0.3 on every seed" is NOT met on this seed (0.208; seed 4: 0.292, the
    # other three 0.42): what holds on every seed is drift >= 0.2, against 0.00 with prior
    # preservation on every seed (benchmarks/RESULTS.md).
    assert s["after"]["class_drift"] >= 0.2, s["after"]
