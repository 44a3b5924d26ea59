"""The toy world, measured on the committed base model with the full demo (500 steps, three
photos and three class images a step, UNet + text encoder, twelve captioned photos, class images
of "a photo of a toy" and of a toy in each place). Class drift is counted on 8 class prompts (the
plain one, the 4 places, 3 colours the class images never show). The classroom issue's targets,
and where they hold over training seeds 0-4 (benchmarks/toy_seeds.json, benchmarks/RESULTS.md):

    with prior preservation   drift mean <= 0.15 and worst <= 0.25: met on all five (0.00,
                              0.00); prompt fidelity >= 0.8: met (0.92-1.00); subject fidelity
                              >= 0.75: met on all five (0.875-1.000; 0.833-0.875 on seeds 5
                              and 6, never used to choose the recipe)
    without                   drift mean >= 0.3: met on all five (0.344-0.708)

Two seeds run here, one demo each: with prior preservation seed 0 (the README's), without it
seed 1.
"""

import json

import pytest
from PIL import Image

from dreamkit.models.loading import load_pipeline
from dreamkit.toy import base_model_dir
from dreamkit.toy.demo import run_demo
from dreamkit.toy.metrics import evaluate_base


@pytest.fixture(scope="module")
def base():
    return load_pipeline(str(base_model_dir()))


def test_base_model_is_small_and_in_diffusers_layout():
    folder = base_model_dir()
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size <= 25 * 2**20, size
    assert all((folder / p).is_dir() for p in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"))
    assert not list(folder.rglob("*.bin")) and list(folder.rglob("*.safetensors"))


def test_base_model_follows_prompts(base):
    r = evaluate_base(base, per_prompt=1)
    assert r["colour_and_context"] >= 0.8, r  # [>= 80% colour and context correct]


THRESHOLDS_WITH_PRIOR = {"subject_fidelity": 0.75, "prompt_fidelity": 0.8}
# class drift over the 8 class prompts (the plain one, 4 places, 3 colours): mean and worst
MAX_MEAN_DRIFT_WITH_PRIOR, MAX_WORST_DRIFT_WITH_PRIOR, MIN_MEAN_DRIFT_WITHOUT = 0.15, 0.25, 0.3


def assert_classroom_targets(with_prior: dict | None, without: dict | None) -> None:
    """The classroom issue's targets, for one training seed ('after' measures)."""
    if with_prior is not None:
        for key, low in THRESHOLDS_WITH_PRIOR.items():
            assert with_prior[key] >= low, (key, with_prior)
        assert with_prior["class_drift_mean"] <= MAX_MEAN_DRIFT_WITH_PRIOR, with_prior
        assert with_prior["class_drift_worst"] <= MAX_WORST_DRIFT_WITH_PRIOR, with_prior
        assert len(with_prior["class_drift_by_prompt"]) == 8
    if without is not None:
        assert without["class_drift_mean"] >= MIN_MEAN_DRIFT_WITHOUT, without


SEED_WITH_PRIOR, SEED_WITHOUT = 0, 1


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    with_prior = run_demo(root / "prior", seed=SEED_WITH_PRIOR)
    without = run_demo(root / "no-prior", with_prior_preservation=False, seed=SEED_WITHOUT)
    return root, with_prior, without


@pytest.mark.slow
def test_base_model_has_never_seen_the_subject(demos):
    """The demo's "before": the base model measured as the fine-tuned one is (evaluate_toy)."""
    r = demos[1]["before"]
    assert r["subject_fidelity"] <= 0.05 and r["class_drift"] <= 0.05, r  # [<= 0.05]
    assert r["class_drift_worst"] <= 0.05, r  # on none of the 8 class prompts either
    assert r["n_subject_samples"] == 24 and r["n_class_samples"] == 24, r


@pytest.mark.slow
def test_demo_writes_its_outputs(demos):
    root, summary, _ = demos
    out = root / "prior"
    grid = Image.open(out / "before_after.png")
    assert grid.size[0] > 600 and grid.size[1] > grid.size[0]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["after"] == summary["after"] and saved["step_mode"] == "one_pass"
    assert (out / "run" / "loss.png").exists() and (out / "run" / "model_index.json").exists()
    assert len(list((out / "run" / "class_images").glob("*.png"))) == 50
    # drawn from the plain class prompt and the class in each place, in turn, each with its
    # prompt beside it
    said = [p.read_text().strip() for p in sorted((out / "run" / "class_images").glob("*.txt"))]
    assert len(said) == 50 and said[:5] == ["a photo of a toy", "a photo of a toy on the beach",
                                           "a photo of a toy in the snow",
                                           "a photo of a toy on the grass",
                                           "a photo of a toy at night"] and said[5] == said[0]
    stages = saved["seconds_by_stage"]  # where the time went, stage by stage
    assert {"base model measured", "training steps", "fine-tuned model measured"} <= set(stages)
    assert sum(stages.values()) <= saved["seconds"] + 0.5


@pytest.mark.slow
def test_the_classroom_targets_on_two_seeds(demos):
    _, s, no_prior = demos
    assert s["seed"] == SEED_WITH_PRIOR and no_prior["seed"] == SEED_WITHOUT
    assert s["before"]["subject_colour_share"] == 0 and s["before"]["subject_fidelity"] == 0
    assert s["after"]["subject_colour_share"] >= 0.04, s["after"]
    assert_classroom_targets(s["after"], no_prior["after"])


@pytest.mark.slow
def test_without_prior_the_class_drifts(demos):
    _, prior, no_prior = demos
    a, b = prior["after"], no_prior["after"]
    assert b["class_drift_mean"] >= 2 * a["class_drift_mean"], (a, b)
    assert b["class_drift_mean"] > a["class_drift_mean"], (a, b)
    assert b["prompt_fidelity"] >= 0.75, b
