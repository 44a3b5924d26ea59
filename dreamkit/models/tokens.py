"""The rare-token check: is the identifier really a blank name for the model?

DreamBooth (§4.1 of the paper) names the subject with a *rare* token, one the model has little
meaning for, so fine-tuning does not have to fight an existing meaning. Three things go wrong
in practice, and `check_identifier` looks for each with the model's own tokenizer:

- the identifier splits into several tokens ("xxyyzz" -> xx, yy, zz): the meaning gets spread
  over pieces that each mean something else;
- it is a word, name, brand, title or abbreviation people write, at any length: every
  whole-word token of Stable Diffusion's vocabulary that appears in the word lists of 27
  languages (wordfreq's, down to about once per 100 million words) is flagged with how often it
  is written, and the strongest meanings with their category: people, brands, franchises and
  characters, styles, places, profanity and hate terms (vocab/meanings.tsv); a frequent word
  less its first or last letter ("gypt", "xford") reads as that word and is flagged too;
- it has a known meaning people learned the hard way: "sks", the most copied identifier, is
  also the name of a rifle, and Stable Diffusion 1.5 draws guns for it.

`suggest_identifiers` follows the paper's recipe, rare tokens that decode to a few characters,
from a pool of single tokens that are in none of those lists, no abbreviation or hashtag family
(football clubs "swfc", US weather hashtags "ncwx", Canadian airport codes "yyj", high-school
sports "txhsfb"), not two frequent words glued together ("drwho") and not the start or end of a
frequent word ("useum"): vocab/identifier_pool.txt, made by scripts/make_word_list.py with
the rules in POOL_RULES. The pool is ordered for each class noun, leaving out tokens that share
three letters with it.

Every Stable Diffusion (1.x, 2.x, XL) reads prompts with the same CLIP BPE vocabulary; dreamkit
ships it (vocab/, MIT, from OpenAI CLIP via open_clip), so `sd_vocabulary_tokenizer()` (or
`load_tokenizer("sd-vocabulary")`) checks identifiers offline exactly as those models split them.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..core import checks
from ..core.errors import ConfigError
from .words import DENY, identifier_pool, is_known_word, near_word, word_info

# transformers: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["TokenCheck", "check_identifier", "suggest_identifiers", "KNOWN_MEANINGS",
           "COMMON_WORDS", "DENY", "is_known_word", "frequent_merge", "sd_vocabulary_tokenizer",
           "bytes_to_unicode", "SD_VOCABULARY", "REAL_VOCABULARY_SIZE"]

SD_VOCABULARY = "sd-vocabulary"  # load_tokenizer's name for the shipped CLIP vocabulary
# A tokenizer trained on real text has tens of thousands of tokens (CLIP: 49,408); the toy
# world's has ~630. Known meanings and word lists only apply to the first kind.
REAL_VOCABULARY_SIZE = 10_000

# Identifiers people pick because they look meaningless, and what models know them as.
KNOWN_MEANINGS = {
    "sks": "the SKS rifle (Stable Diffusion 1.5 draws guns for 'sks')",
    "xyz": "a common abbreviation",
    "abc": "the alphabet, a TV network",
    "usa": "the country",
    "bmw": "the car maker",
    "nyc": "New York City",
    "ufo": "a flying saucer",
    "dslr": "a camera type (it changes the photo style)",
    "hdr": "a photo style",
    "ak": "the AK rifles",
    "nft": "crypto art",
    "lol": "laughter, a video game",
    "zzz": "sleep",
    "xxx": "adult content (may trigger the safety checker)",
    "cgi": "computer graphics (it changes the style)",
    "tok": "the token marker of some kits, learned with a meaning by fine-tuned models",
}
COMMON_WORDS = frozenset("""
a an the of on in at to and or with for from by photo picture image painting drawing art style
man woman person boy girl child baby face people dog cat bird horse car house tree toy bag
red blue green yellow black white pink purple orange brown gray grey gold silver
big small large little new old good best beautiful cute one two three first last
""".split())
VOWELS = set("aeiou")


def bytes_to_unicode() -> list[str]:
    """CLIP's byte-level BPE maps each byte to a printable character; its vocabulary uses
    those (the first 256 tokens, in this order)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]



@functools.lru_cache(maxsize=1)
def sd_vocabulary_tokenizer():
    """The CLIPTokenizer of Stable Diffusion 1.x/2.x/XL (49,408 tokens), built offline from
    the BPE file dreamkit ships, as OpenAI's CLIP builds it: the 256 byte characters, the same
    ending a word (</w>), the 48,894 merges in order, then the start and end tokens."""
    from transformers import CLIPTokenizer

    data = resources.files("dreamkit.models").joinpath("vocab/bpe_simple_vocab_16e6.txt.gz")
    lines = gzip.decompress(data.read_bytes()).decode("utf-8").split("\n")
    merges = lines[1:49152 - 256 - 2 + 1]
    chars = bytes_to_unicode()
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m.split()) for m in merges] \
        + ["<|startoftext|>", "<|endoftext|>"]
    with tempfile.TemporaryDirectory(prefix="dreamkit-sd-vocabulary-") as tmp:
        folder = Path(tmp)  # read once by the tokenizer, then removed
        (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
        (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        # 77: CLIP's text context, where every SD pipeline pads and truncates prompts (without
        # it the tokenizer's limit is "unlimited", and a pipeline cannot pad to it)
        return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                             model_max_length=77)


@dataclass
class TokenCheck:
    identifier: str
    tokens: list
    warnings: list = field(default_factory=list)
    suggestions: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings

    def text(self) -> str:
        if self.ok:
            return (f"identifier {self.identifier!r} is one rare token for this model "
                    f"({self.tokens[0]}): good")
        lines = [f"identifier {self.identifier!r}: {w}" for w in self.warnings]
        if self.suggestions:
            lines.append(f"  rare single tokens of this model to try instead: "
                         f"{', '.join(self.suggestions)}")
        return "\n".join(lines)


def _word(token: str) -> str | None:
    """The word of a whole-word BPE token ('sks</w>' -> 'sks'), else None."""
    return token[:-4] if token.endswith("</w>") and len(token) > 4 else None


def check_identifier(tokenizer, identifier: str, class_noun: str = "",
                     n_suggestions: int = 5) -> TokenCheck:
    """Warnings about `identifier` for this tokenizer (a CLIPTokenizer), with suggestions."""
    checks.identifier("identifier", identifier)  # one word, as training takes it
    if not isinstance(class_noun, str):
        raise ConfigError("class_noun", class_noun, "give the class as text, e.g. 'dog'")
    checks.whole("n_suggestions", n_suggestions, 0, 10_000)
    ident = identifier.strip().lower()  # CLIP's tokenizer lower-cases too
    tokens = tokenizer.tokenize(ident)
    check = TokenCheck(identifier, tokens)
    vocab = _Vocab(tokenizer)
    if len(tokens) > 1:
        check.warnings.append(f"splits into {len(tokens)} tokens ({', '.join(tokens)}), so its "
                              f"meaning is spread over pieces that mean other things; use a "
                              f"single-token identifier")
    elif not tokens or tokens[0] == tokenizer.unk_token:
        check.warnings.append("is unknown to this tokenizer (every unknown word becomes the "
                              "same token); use a word from its vocabulary")
    real = len(vocab) >= REAL_VOCABULARY_SIZE  # a model that learned from real text
    nouns = set(class_noun.lower().split())
    meaning = word_info(ident) if real else None
    if real and ident in KNOWN_MEANINGS:
        check.warnings.append(f"has a meaning the model may know: {KNOWN_MEANINGS[ident]}; "
                              f"training must overcome it")
    elif ident in COMMON_WORDS or ident in nouns:
        what = "is your class noun" if ident in nouns else "is a common word"
        check.warnings.append(f"{what}: the model already has a strong meaning for it, and "
                              f"'a photo of {ident}' would change for everyone's {ident}")
    elif meaning is not None:
        check.warnings.append(f"is {meaning}, so the model likely has a meaning for it")
    elif real and len(tokens) == 1 and (near := near_word(ident)):
        check.warnings.append(f"reads as '{near}' less a letter, so the model may take it for "
                              f"that word")
    elif len(tokens) == 1 and _word(tokens[0]) and real and frequent_merge(vocab, tokens[0]):
        check.warnings.append(f"is among the most frequent quarter of this vocabulary (merge "
                              f"rank {vocab[tokens[0]] - 512} of {len(vocab) - 512}): likely a "
                              f"word with a meaning")
    if check.warnings:
        check.suggestions = suggest_identifiers(tokenizer, n_suggestions, exclude={ident},
                                                class_noun=class_noun)
        if len(check.suggestions) < n_suggestions:
            check.warnings.append(f"(only {len(check.suggestions)} rare single tokens of this "
                                  f"vocabulary qualify as suggestions, of the {n_suggestions} "
                                  f"asked for)")
    return check


class _Vocab:
    """A tokenizer's ids by lookup: the slow CLIPTokenizer copies its 49,408-entry vocabulary
    on every get_vocab(), which a check of hundreds of names would pay each time."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.tokenizer)

    def __getitem__(self, token: str) -> int:
        return self.tokenizer.convert_tokens_to_ids(token)


def frequent_merge(vocab, token: str) -> bool:
    """BPE merges are learned in order of frequency, so a low id is a frequent token: the
    first quarter of the merges (the first 512 ids are the single bytes)."""
    return 0 <= vocab[token] - 512 < (len(vocab) - 512) // 4


@functools.lru_cache(maxsize=64)
def _pool_order(seed: str) -> tuple:
    """The pool, 3-4 letters first, in an order of its own for each class noun."""
    return tuple(sorted(identifier_pool(), key=lambda w: (len(w) > 4, hashlib.sha256(
        f"{seed}:{w}".encode()).digest())))


def _close(word: str, noun: str) -> bool:
    """Shares three letters in a row with the class noun ('dogg' and 'dog')."""
    return any(noun[i:i + 3] in word for i in range(len(noun) - 2))


def suggest_identifiers(tokenizer, n: int = 5, exclude=(), class_noun: str = "") -> list[str]:
    """Rare, short, single-token identifiers from the tokenizer's own vocabulary.

    The paper's recipe: rare tokens that decode to a few characters. A real vocabulary (Stable
    Diffusion's) takes them from identifier_pool() (non-words, shortest first), in an order of
    their own for each class noun, leaving out tokens close to it; fewer than `n` only when the
    vocabulary has no more (check_identifier says so). A small vocabulary (the toy world's):
    its rarest 3-4 letter words without vowels."""
    nouns = [w for w in class_noun.lower().split() if len(w) >= 3]
    skip = set(exclude) | set(KNOWN_MEANINGS) | COMMON_WORDS | DENY

    def fits(word: str) -> bool:
        return word not in skip and not any(_close(word, noun) for noun in nouns) \
            and len(tokenizer.tokenize(word)) == 1  # it comes back as the same one token
    if len(tokenizer) >= REAL_VOCABULARY_SIZE:
        found = []
        for w in _pool_order(class_noun.strip().lower()):
            if len(found) >= n:
                break
            if fits(w):
                found.append(w)
        return found
    found = []
    for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: -kv[1]):
        word = _word(token)
        if word and 3 <= len(word) <= 4 and word.isascii() and word.isalpha() \
                and word.islower() and not VOWELS & set(word) and fits(word):
            found.append(word)
        if len(found) >= n:
            break
    return found
