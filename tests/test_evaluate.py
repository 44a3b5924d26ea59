"""Evaluation: the metric arithmetic on tiny offline DINO/CLIP models, the toy world through the
same API, scoring during training without changing it, the best-step rule, the report."""

import json

import pytest
import torch
from PIL import Image

from dreamkit import TrainConfig, train
from dreamkit.evaluation.evaluate import (
    ModelScorer,
    Samples,
    evaluate_pipeline,
    mean_pairwise_cosine,
    self_similarity,
    strip_identifier,
)
from dreamkit.evaluation.scoring import ScoreCallback, choose_best
from dreamkit.testing import make_photos, make_tiny_eval_models
from dreamkit.ui.cli import main


@pytest.fixture(scope="module")
def eval_models(tmp_path_factory):
    return make_tiny_eval_models(tmp_path_factory.mktemp("eval"))


@pytest.fixture(scope="module")
def scorer(eval_models):
    return ModelScorer(str(eval_models[0]), str(eval_models[1]))


def test_cosine_arithmetic_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[3.0, 0.0]])
    assert mean_pairwise_cosine(a, b) == pytest.approx(0.5)  # cos 1 and cos 0
    c = torch.tensor([[1.0, 1.0], [2.0, 2.0], [1.0, -1.0]])
    assert self_similarity(c) == pytest.approx((1 + 0 + 0) * 2 / 6)
    d = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    assert mean_pairwise_cosine(d, d) == pytest.approx((1 + 2 ** -0.5 * 2 + 1) / 4)
    assert strip_identifier("a sks dog on the beach", "sks") == "a dog on the beach"


def test_model_scores_match_hand_computed_cosines(scorer, tmp_path):
    photos = [Image.open(p) for p in make_photos(tmp_path / "p", n=4, size=40)]
    gen = {"a sks dog in the snow": photos[:2], "a red sks dog": photos[2:]}
    klass = [Image.open(p) for p in make_photos(tmp_path / "c", n=3, size=40, seed=7)]
    r = scorer.score(Samples("sks", gen, klass, photos[:3]))
    unit = torch.nn.functional.normalize
    dino_gen, dino_real = unit(scorer.dino(photos)), unit(scorer.dino(photos[:3]))
    dino_cls = unit(scorer.dino(klass))
    assert r["subject_fidelity"] == pytest.approx(float((dino_gen @ dino_real.T).mean()), abs=1e-4)
    assert r["class_drift"] == pytest.approx(float((dino_cls @ dino_real.T).mean()), abs=1e-4)
    sim = dino_cls @ dino_cls.T
    assert r["class_diversity"] == pytest.approx(1 - float((sim.sum() - 3) / 6), abs=1e-4)
    clip_gen, clip_real = unit(scorer.clip_images(photos)), unit(scorer.clip_images(photos[:3]))
    assert r["clip_i"] == pytest.approx(float((clip_gen @ clip_real.T).mean()), abs=1e-4)
    text = unit(scorer.clip_texts(["a dog in the snow", "a red dog"]))  # identifier removed
    clip_t = ((clip_gen[:2] @ text[0]).mean() + (clip_gen[2:] @ text[1]).mean()) / 2
    assert r["prompt_fidelity"] == pytest.approx(float(clip_t), abs=1e-4)
    assert r["metric_names"]["subject_fidelity"] == "DINO"
    # The same pictures as generated and real: DINO is the set's mean cosine incl. itself.
    same = scorer.score(Samples("sks", {"a sks dog": photos[:3]}, klass, photos[:3]))
    assert same["subject_fidelity"] == pytest.approx(float((dino_real @ dino_real.T).mean()),
                                                     abs=1e-4)


def test_scoring_needs_the_real_photos(scorer):
    from dreamkit.core.errors import DreamkitError
    with pytest.raises(DreamkitError, match="real photos"):
        scorer.score(Samples("sks", {"a sks dog": []}, [], []))


def test_toy_oracle_is_one_scorer_of_the_same_api_for_every_subject(tmp_path):
    """evaluate_toy is evaluate_pipeline with the ToyScorer; a run with two subjects is scored
    per subject, and the headline numbers are their means."""
    from dreamkit.evaluation.scoring import score_subjects
    from dreamkit.models.loading import load_pipeline
    from dreamkit.toy import base_model_dir
    from dreamkit.toy.scorer import TOY_EVAL, ToyScorer, evaluate_toy, toy_prompts
    pipe = load_pipeline(str(base_model_dir()))
    direct = evaluate_toy(pipe, per_context=2, n_class=6, over_prompts=False)  # the same API
    via_api = evaluate_pipeline(pipe, ToyScorer(), toy_prompts("sks"), "a photo of a toy", "sks",
                                per_prompt=2, n_class=6, seed=1000, **TOY_EVAL)
    for k in ("subject_fidelity", "prompt_fidelity", "class_drift", "class_diversity",
              "subject_colour_share"):
        assert via_api[k] == direct[k], k
    assert direct["prompt_fidelity"] >= 0.75  # the base model draws the contexts asked for
    assert direct["subject_fidelity"] == 0 and direct["n_class_samples"] == 6
    cfg = TrainConfig(class_noun="toy", output_dir=str(tmp_path), concepts=[
        {"instance_dir": "a", "identifier": "sks"}, {"instance_dir": "b", "identifier": "zwx"}])
    scorer = ToyScorer()
    both = score_subjects(pipe, scorer, cfg.resolved_concepts, {"sks": [], "zwx": []}, None, 1,
                          2, 1000, TOY_EVAL)
    assert set(both["subjects"]) == {"sks", "zwx"}
    for k in ("prompt_fidelity", "class_drift"):
        mean = sum(both["subjects"][i][k] for i in ("sks", "zwx")) / 2
        assert both[k] == pytest.approx(mean, abs=1e-4), k
    assert both["subjects"]["zwx"]["shows"]["zwx"] == 0  # the base model knows neither


def test_best_step_rule():
    base = {"subject_fidelity": 0.0, "prompt_fidelity": 0.95, "class_drift": 0.0}
    curve = [{"step": 100, "subject_fidelity": 0.3, "prompt_fidelity": 0.95, "class_drift": 0.0},
             {"step": 200, "subject_fidelity": 0.8, "prompt_fidelity": 0.92, "class_drift": 0.05},
             {"step": 300, "subject_fidelity": 0.9, "prompt_fidelity": 0.80, "class_drift": 0.05},
             {"step": 400, "subject_fidelity": 0.95, "prompt_fidelity": 0.95, "class_drift": 0.3}]
    best, why = choose_best(curve, base)
    assert best["step"] == 200  # 300 loses the prompt, 400 drifts
    assert "step 200" in why and "0.800" in why and ">= 0.900" in why and "<= 0.100" in why
    best, why = choose_best(curve[2:], base)
    assert "no scored step" in why and best["step"] == 400  # best prompt fidelity, named
    tie = [dict(curve[0], step=50), curve[0]]
    assert choose_best(tie, base)[0]["step"] == 50  # a tie goes to fewer steps


@pytest.mark.parametrize("mode", ["one_pass", "two_pass"])
def test_scoring_while_training_leaves_training_unchanged(mode, tiny_model, photos, tmp_path,
                                                          scorer):
    common = dict(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                  class_noun="dog", with_prior_preservation=True, num_class_images=2,
                  sample_batch_size=2, class_inference_steps=2, resolution=32,
                  max_train_steps=4, learning_rate=1e-3, sample_steps=2, num_sample_images=1,
                  step_mode=mode, checkpointing_steps=0)
    plain = train(TrainConfig(output_dir=str(tmp_path / "a"), **common), callbacks=[])
    cb = ScoreCallback(scorer, per_prompt=1, n_class=2)
    scored = train(TrainConfig(output_dir=str(tmp_path / "b"), sample_every=2, **common),
                   callbacks=[cb])
    for (name, p), q in zip(plain.unet.state_dict().items(), scored.unet.state_dict().values()):
        assert torch.equal(p, q), name
    assert [e["step"] for e in cb.curve] == [2, 4]
    saved = json.loads((tmp_path / "b" / "scores.json").read_text())
    assert saved["best_step"] in (2, 4) and saved["why"].startswith("step ")
    assert (tmp_path / "b" / "scores.png").exists()


def test_cli_evaluate_writes_report_and_chart(tiny_model, photos, tmp_path, eval_models, capsys):
    run = tmp_path / "run"
    train(TrainConfig(pretrained_model_name_or_path=str(tiny_model), instance_dir=str(photos),
                      class_noun="dog", resolution=32, max_train_steps=2, sample_steps=2,
                      num_sample_images=1, output_dir=str(run), checkpointing_steps=0),
          callbacks=[])
    code = main(["evaluate", str(run), "--scorer", "models", "--dino", str(eval_models[0]),
                 "--clip", str(eval_models[1]), "--prompts", "3", "--per_prompt", "1",
                 "--n_class", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "subject_fidelity" in out and "CLIP-T" in out
    report = json.loads((run / "evaluation.json").read_text())
    assert report["prompts"] == ["a zshq dog in the jungle", "a zshq dog in the snow",
                                 "a zshq dog on the beach"]  # the paper's live-subject prompts
    assert set(report["base"]) >= {"subject_fidelity", "clip_i", "prompt_fidelity",
                                   "class_drift", "class_diversity"}
    assert report["base"] != report["fine_tuned"]
    assert Image.open(run / "evaluation.png").size[0] >= 600
    assert main(["evaluate", str(tmp_path)]) == 2  # not a run folder: one line, exit 2


def test_pictures_drawn_many_at_a_time_are_the_pictures_drawn_alone(tiny_model, monkeypatch):
    """generate_many groups pictures into calls; each keeps its own prompt and seed."""
    import numpy as np

    from dreamkit.models.loading import load_pipeline
    from dreamkit.outputs.sample import PIXELS_PER_CALL, generate, generate_many
    pipe = load_pipeline(str(tiny_model))
    kw = dict(num_inference_steps=3, guidance_scale=7.5)
    wanted = [("a photo of sks dog", 5), ("a red car", 0), ("a photo of sks dog", 6)]
    calls, real_call = [], type(pipe).__call__

    def counting(self, prompt, **k):
        calls.append(len(prompt))
        return real_call(self, prompt, **k)
    monkeypatch.setattr(type(pipe), "__call__", counting)
    together = generate_many(pipe, wanted, **kw)
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    assert calls == [3] and PIXELS_PER_CALL // side ** 2 >= 3  # one call for all three
    alone = [generate(pipe, p, num_images=1, seed=s, **kw)[0] for p, s in wanted]
    assert calls == [3, 1, 1, 1]
    for a, b in zip(together, alone):
        assert np.abs(np.asarray(a, float) - np.asarray(b, float)).max() <= 2  # float rounding
    assert np.abs(np.asarray(together[0], float) - np.asarray(together[2], float)).max() > 2


def test_the_drift_over_prompts_reuses_the_plain_class_pictures(monkeypatch):
    """The plain class prompt's drift pictures (seeds seed + 5000, ...) are evaluate_toy's
    class pictures: the same pixels when drawn again, so they are not drawn twice."""
    import numpy as np

    import dreamkit.toy.scorer as toy
    from dreamkit.evaluation.evaluate import draw_samples
    from dreamkit.models.loading import load_pipeline
    from dreamkit.toy import base_model_dir
    pipe = load_pipeline(str(base_model_dir()))
    samples = draw_samples(pipe, toy.toy_prompts(), toy.class_prompt(), "sks", per_prompt=1,
                           n_class=2, seed=1000, **toy.TOY_EVAL)
    asked, generate_many = [], toy.generate_many

    def recorded(pipe, wanted, **kw):
        asked.append(list(wanted))
        return generate_many(pipe, wanted, **kw)
    monkeypatch.setattr(toy, "generate_many", recorded)
    with_plain = toy.class_drift_over_prompts(pipe, per_prompt=2, seed=1000, plain=samples.klass)
    plain_asked = [w for w in asked[0] if w[0] == toy.class_prompt()]
    assert not plain_asked and len(asked[0]) == 2 * (len(toy.drift_prompts()) - 1)
    again = generate_many(pipe, [(toy.class_prompt(), 6000), (toy.class_prompt(), 6001)],
                          at_least=2, **toy.TOY_EVAL)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(again, samples.klass))
    assert with_plain == toy.class_drift_over_prompts(pipe, per_prompt=2, seed=1000)
