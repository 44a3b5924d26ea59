"""The rare-token check, with the tiny test tokenizer and the toy model's tokenizer."""

import subprocess
import sys

import pytest
from transformers import CLIPTokenizer

from dreamkit.testing import write_clip_tokenizer_files
from dreamkit.toy import base_model_dir
from dreamkit.tokens import check_identifier, suggest_identifiers


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = write_clip_tokenizer_files(tmp_path_factory.mktemp("tok"))
    return CLIPTokenizer(str(d / "vocab.json"), str(d / "merges.txt"))


@pytest.fixture(scope="module")
def toy():
    return CLIPTokenizer.from_pretrained(str(base_model_dir()), subfolder="tokenizer")


@pytest.mark.parametrize("which", ["tiny", "toy"])
def test_sks_is_flagged_for_its_meaning(which, request):
    tok = request.getfixturevalue(which)
    for ident in ("sks", "SKS"):
        check = check_identifier(tok, ident, "dog")
        assert not check.ok and "rifle" in check.text()


@pytest.mark.parametrize("which", ["tiny", "toy"])
def test_multi_token_identifiers_are_flagged(which, request):
    tok = request.getfixturevalue(which)
    check = check_identifier(tok, "qwzxq", "toy")
    assert not check.ok
    assert check.tokens == tok.tokenize("qwzxq") and len(check.tokens) > 1
    assert f"splits into {len(check.tokens)} tokens" in check.text()


def test_common_words_and_the_class_noun_are_flagged(toy):
    assert "common word" in check_identifier(toy, "red", "toy").text()
    assert "your class noun" in check_identifier(toy, "toy", "toy").text()


def test_a_rare_single_token_passes_and_suggestions_are_rare_single_tokens(toy):
    check = check_identifier(toy, "zwx", "toy")
    assert check.ok and check.tokens == ["zwx</w>"] and "good" in check.text()
    bad = check_identifier(toy, "sks", "toy")
    # The toy world's rare words (noise in its pretraining captions), not 'sks' itself.
    assert set(bad.suggestions) == {"zwx", "qxv", "vbk", "pfj", "hwq"}
    for word in bad.suggestions:
        assert len(toy.tokenize(word)) == 1 and check_identifier(toy, word, "toy").ok
    assert "try instead: hwq" in bad.text()


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


def test_cli_check_token():
    model = str(base_model_dir())
    bad = subprocess.run([sys.executable, "-m", "dreamkit", "check-token", "sks", "--model",
                          model, "--class_noun", "toy"], capture_output=True, text=True)
    assert bad.returncode == 1 and "rifle" in bad.stdout and "hwq" in bad.stdout
    good = subprocess.run([sys.executable, "-m", "dreamkit", "check-token", "zwx", "--model",
                           model], capture_output=True, text=True)
    assert good.returncode == 0 and "good" in good.stdout
