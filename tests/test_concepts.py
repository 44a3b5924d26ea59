"""Several subjects in one run: the concepts list in the config, the CLI, the data and training."""

import json

import pytest

from dreamkit import TrainConfig, train
from dreamkit.core.concepts import class_jobs
from dreamkit.core.errors import ConfigError
from dreamkit.inputs.photos import DreamBoothDataset
from dreamkit.testing import make_photos
from dreamkit.ui.cli import main


def two(tmp_path, **kw):
    return TrainConfig(output_dir=str(tmp_path / "run"), class_noun="dog",
                       with_prior_preservation=True, num_class_images=3, concepts=[
                           {"instance_dir": "rex", "identifier": "zwx"},
                           {"instance_data_dir": "tom", "identifier": "hwq",
                            "class_noun": "cat", "num_class_images": 5}], **kw)


def test_keys_left_out_come_from_the_run_settings(tmp_path):
    rex, tom = two(tmp_path).resolved_concepts
    assert (rex.instance_dir, rex.class_noun, rex.num_class_images) == ("rex", "dog", 3)
    assert rex.instance_prompt == "a photo of zwx dog" and rex.class_prompt == "a photo of dog"
    assert (tom.instance_dir, tom.class_noun, tom.num_class_images) == ("tom", "cat", 5)
    assert rex.class_dir.endswith("class_images/a_photo_of_dog")
    assert tom.class_dir.endswith("class_images/a_photo_of_cat")
    assert two(tmp_path).resolved_sample_prompts[::2] == ["a photo of zwx dog",
                                                          "a photo of hwq cat"]


def test_subjects_of_one_class_share_class_images(tmp_path):
    cfg = TrainConfig(output_dir=str(tmp_path), class_noun="toy", with_prior_preservation=True,
                      num_class_images=4, concepts=[{"instance_dir": "a", "identifier": "sks"},
                                                    {"instance_dir": "b", "identifier": "zwx",
                                                     "num_class_images": 6}])
    jobs = class_jobs(cfg.resolved_concepts, True)
    assert jobs == [(str(tmp_path / "class_images" / "a_photo_of_toy"), ("a photo of toy",), 6)]


@pytest.mark.parametrize("concepts, where, words", [
    ([{"instance_dir": "a", "identifer": "x"}], "concepts[0].identifer", "not a concept key"),
    ([{"instance_dir": "a"}, {"instance_dir": "b"}], "concepts[1].identifier",
     "already uses it"),
    ([{"instance_dir": "a", "identifier": "my dog"}], "concepts[0].identifier", "one rare word"),
    ([{"instance_dir": "a", "num_class_images": -1}], "concepts[0].num_class_images", "0 or more"),
    ([{"instance_dir": "a", "instance_prompt": "a {tokn} dog"}], "concepts[0].instance_prompt",
     "not a template field"),
    (["photos/rex"], "concepts[0]", "each concept is an object"),
])
def test_bad_concepts_name_the_concept_and_key(concepts, where, words, tmp_path):
    with pytest.raises(ConfigError) as e:
        TrainConfig(output_dir=str(tmp_path), class_noun="dog", concepts=concepts)
    assert str(e.value).startswith(where + "=") and words in str(e.value)


def test_ready_needs_each_subjects_photos_and_one_prompt_per_class_folder(tmp_path):
    cfg = TrainConfig(class_noun="dog", concepts=[{"identifier": "zwx"}])
    with pytest.raises(ConfigError, match=r"concepts\[0\].instance_dir"):
        cfg.check_ready()
    clash = TrainConfig(class_noun="dog", with_prior_preservation=True, concepts=[
        {"instance_dir": "a", "identifier": "zwx", "class_dir": "c"},
        {"instance_dir": "b", "identifier": "hwq", "class_noun": "cat", "class_dir": "c"}])
    with pytest.raises(ConfigError, match=r"concepts\[1\].class_dir.*its own class_dir"):
        clash.check_ready()


def test_each_photo_is_paired_with_its_own_class(tmp_path):
    a = make_photos(tmp_path / "a", n=2, size=16)
    b = make_photos(tmp_path / "b", n=3, size=16, seed=1)
    ca = make_photos(tmp_path / "ca", n=2, size=16, seed=2)
    cb = make_photos(tmp_path / "cb", n=4, size=16, seed=3)
    ds = DreamBoothDataset(a + b, ["A"] * 2 + ["B"] * 3, 16, ca + cb,
                           ["class A"] * 2 + ["class B"] * 4,
                           class_pools=[[0, 1]] * 2 + [[2, 3, 4, 5]] * 3)
    for i in range(len(ds)):
        item = ds[i]
        assert item["class_prompt"] == "class " + item["instance_prompt"]
    assert len(ds) == 6


def test_cli_trains_two_subjects_from_a_concepts_file(tiny_model, tmp_path, capsys):
    make_photos(tmp_path / "rex", n=3, size=32)
    make_photos(tmp_path / "tom", n=2, size=32, seed=5)
    spec = tmp_path / "concepts.json"
    spec.write_text(json.dumps([
        {"instance_dir": str(tmp_path / "rex"), "identifier": "qwzxq", "class_noun": "dog"},
        {"instance_dir": str(tmp_path / "tom"), "identifier": "zwx", "class_noun": "cat"}]))
    out = tmp_path / "run"
    code = main(["train", "--pretrained_model_name_or_path", str(tiny_model), "--concepts",
                 str(spec), "--with_prior_preservation", "--num_class_images", "2",
                 "--class_inference_steps", "2", "--sample_batch_size", "2", "--resolution",
                 "32", "--max_train_steps", "3", "--sample_steps", "2", "--num_sample_images",
                 "1", "--output_dir", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "concepts[0] 'a photo of qwzxq dog'" in text and "concepts[1] 'a photo of zwx cat'" in text
    assert "warning: identifier 'qwzxq': splits into" in text  # the token check ran
    assert len(list((out / "class_images" / "a_photo_of_dog").glob("*.png"))) == 2
    assert len(list((out / "class_images" / "a_photo_of_cat").glob("*.png"))) == 2
    saved = TrainConfig.load(out / "config.json")
    assert [c["identifier"] for c in saved.concepts] == ["qwzxq", "zwx"]
    assert (out / "model_index.json").exists()


def test_cli_rejects_a_broken_concepts_list(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--concepts", "[{\"instance_dir\": ", "--output_dir", str(tmp_path)])
    assert e.value.code == 2
    assert "not a JSON list" in capsys.readouterr().err


def test_train_two_subjects_in_process(tiny_model, tmp_path):
    make_photos(tmp_path / "a", n=2, size=32)
    make_photos(tmp_path / "b", n=2, size=32, seed=9)
    cfg = TrainConfig(pretrained_model_name_or_path=str(tiny_model), class_noun="toy",
                      with_prior_preservation=True, num_class_images=2, sample_batch_size=2,
                      class_inference_steps=2, resolution=32, max_train_steps=2,
                      sample_steps=2, num_sample_images=1, output_dir=str(tmp_path / "run"),
                      step_mode="two_pass",
                      concepts=[{"instance_dir": str(tmp_path / "a"), "identifier": "sks"},
                                {"instance_dir": str(tmp_path / "b"), "identifier": "zwx"}])
    result = train(cfg, callbacks=[])
    assert result.step_mode == "two_pass" and len(result.history) == 2
    # One class (toy): one shared folder of class images.
    assert len(list((tmp_path / "run" / "class_images" / "a_photo_of_toy").glob("*.png"))) == 2


def test_instance_dir_beside_concepts_that_have_their_own_is_an_error(tmp_path, capsys):
    """--instance_dir would be dropped silently; it is refused, saying which to use."""
    spec = json.dumps([{"instance_dir": "photos/rex", "identifier": "zwx"}])
    code = main(["train", "--instance_dir", "photos/mine", "--class_noun", "dog",
                 "--concepts", spec, "--output_dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "instance_dir='photos/mine': is not used: every entry of concepts has its own" in err
    assert not (tmp_path / "run").exists()
    # a concept without its own folder takes instance_dir: that is allowed
    cfg = TrainConfig(instance_dir="photos/mine", class_noun="dog",
                      concepts=[{"identifier": "zwx"}, {"instance_dir": "b", "identifier": "hwq"}])
    assert [c.instance_dir for c in cfg.resolved_concepts] == ["photos/mine", "b"]
