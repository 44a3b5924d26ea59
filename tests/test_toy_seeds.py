"""The classroom's toy world works on other training seeds too: the seed that came out lowest of
five with prior preservation (benchmarks/RESULTS.md) meets the same targets as seed 0
(tests/test_toy_demo.py). A file of its own, so that it runs beside test_toy_demo.py under
pytest-xdist."""

import pytest

from dreamkit.demo import run_demo
from test_toy_demo import assert_classroom_targets

# Seed 1: the lowest subject fidelity with prior preservation (0.833, with seed 2) of training
# seeds 0-4. Without prior preservation the suite runs seed 0 (test_toy_demo.py): the issue's
# drift >= 0.3 is NOT met on seeds 1 and 4 (0.208, 0.292), so there is no passing "worst seed"
# to test for it; benchmarks/RESULTS.md has all five.
WORST_WITH_PRIOR = 1


@pytest.mark.slow
def test_the_lowest_seed_with_prior_preservation_meets_the_targets(tmp_path):
    s = run_demo(tmp_path / "prior", seed=WORST_WITH_PRIOR)
    assert s["seed"] == WORST_WITH_PRIOR
    assert_classroom_targets(s["after"], None)
