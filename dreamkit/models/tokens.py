"""The rare-token check: is the identifier really a blank name for the model?

DreamBooth (§4.1 of the paper) names the subject with a *rare* token, one the model has little
meaning for, so fine-tuning does not have to fight an existing meaning. Three things go wrong
in practice, and `check_identifier` looks for each with the model's own tokenizer:

- the identifier splits into several tokens ("xxyyzz" -> xx, yy, zz): the meaning gets spread
  over pieces that each mean something else;
- it is a common word ("red", "cat"), or among the most frequent tokens of the vocabulary;
- it has a known meaning: "sks", the most copied identifier, is also the name of a rifle, and
  Stable Diffusion 1.5 draws guns for it.

`suggest_identifiers` follows the paper's recipe: rarely used tokens that are short when
decoded (here: 3-4 letters, no vowels, single whole-word tokens from the rarer half of the
vocabulary), leaving out real words, names, abbreviations people know and profanity: everything
in a list of 38,535 English words of 1-4 letters (vocab/known_short_words.txt.gz, made from
wordfreq's large English list by scripts/make_word_list.py), a deny list, and the patterns of
abbreviation families that fill the rare end of CLIP's vocabulary (football clubs "swfc", US
weather hashtags "ncwx", Canadian airport codes "yyj").

Every Stable Diffusion (1.x, 2.x, XL) reads prompts with the same CLIP BPE vocabulary; dreamkit
ships it (vocab/, MIT, from OpenAI CLIP via open_clip), so `sd_vocabulary_tokenizer()` (or
`load_tokenizer("sd-vocabulary")`) checks identifiers offline exactly as those models split them.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

# transformers: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["TokenCheck", "check_identifier", "suggest_identifiers", "KNOWN_MEANINGS",
           "COMMON_WORDS", "DENY", "is_known_word", "sd_vocabulary_tokenizer", "bytes_to_unicode",
           "SD_VOCABULARY", "REAL_VOCABULARY_SIZE"]

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
# Not to be suggested or used as a name, whatever the word list says (profanity, NSFW words).
DENY = frozenset("""fck fuk fuc fk wtf stfu fml fkn sht shyt btch dmn cnt prn xxx sex nsfw
nude porn milf thot""".split())
# Abbreviation families at the rare end of CLIP's vocabulary that word lists miss.
ABBREVIATIONS = (re.compile(r"[a-z]{1,3}fc"),  # football clubs: swfc, bwfc, cpfc
                 re.compile(r"[a-z]{2}wx"),  # US state weather hashtags: ncwx, ohwx
                 re.compile(r"y[a-z]{2}"))  # Canadian airport codes: yyj, yqr


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
def _known_words() -> frozenset:
    data = resources.files("dreamkit.models").joinpath("vocab/known_short_words.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def is_known_word(word: str) -> bool:
    """A word, name or abbreviation people use (English, 1-4 letters), or a denied one."""
    w = word.lower()
    return w in _known_words() or w in DENY or any(p.fullmatch(w) for p in ABBREVIATIONS)


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
    ident = identifier.strip().lower()  # CLIP's tokenizer lower-cases too
    tokens = tokenizer.tokenize(ident)
    check = TokenCheck(identifier, tokens)
    vocab = tokenizer.get_vocab()
    if len(tokens) > 1:
        check.warnings.append(f"splits into {len(tokens)} tokens ({', '.join(tokens)}), so its "
                              f"meaning is spread over pieces that mean other things; use a "
                              f"single-token identifier")
    elif not tokens or tokens[0] == tokenizer.unk_token:
        check.warnings.append("is unknown to this tokenizer (every unknown word becomes the "
                              "same token); use a word from its vocabulary")
    real = len(vocab) >= REAL_VOCABULARY_SIZE  # a model that learned from real text
    nouns = set(class_noun.lower().split())
    if real and ident in KNOWN_MEANINGS:
        check.warnings.append(f"has a meaning the model may know: {KNOWN_MEANINGS[ident]}; "
                              f"training must overcome it")
    elif ident in COMMON_WORDS or ident in nouns:
        what = "is your class noun" if ident in nouns else "is a common word"
        check.warnings.append(f"{what}: the model already has a strong meaning for it, and "
                              f"'a photo of {ident}' would change for everyone's {ident}")
    elif real and is_known_word(ident):
        check.warnings.append("is a word, name or abbreviation people use (or one that should "
                              "not name a subject), so the model likely has a meaning for it")
    elif len(tokens) == 1 and _word(tokens[0]) and real:
        # BPE merges are learned in order of frequency: a low id is a frequent token.
        rank = vocab[tokens[0]] - 512  # the first 512 ids are the single bytes
        if 0 <= rank < (len(vocab) - 512) // 4:
            check.warnings.append(f"is among the most frequent quarter of this vocabulary "
                                  f"(merge rank {rank} of {len(vocab) - 512}): likely a word "
                                  f"with a meaning")
    if check.warnings:
        check.suggestions = suggest_identifiers(tokenizer, n_suggestions,
                                                exclude={ident, *nouns})
    return check


def suggest_identifiers(tokenizer, n: int = 5, exclude=()) -> list[str]:
    """Rare, short, single-token identifiers from the tokenizer's own vocabulary.

    The paper's recipe: tokens from the rare end of the vocabulary that decode to a few
    characters. No vowels keeps out most real words; known meanings are skipped. Rarest first
    (the highest BPE ids of the rarer half).
    """
    vocab = tokenizer.get_vocab()
    real = len(vocab) >= REAL_VOCABULARY_SIZE
    half = 512 + (len(vocab) - 512) // 2 if real else 0
    found = []
    for token, idx in sorted(vocab.items(), key=lambda kv: -kv[1]):
        word = _word(token)
        if (idx < half or not word or not (3 <= len(word) <= 4) or not word.isascii()
                or not word.isalpha() or not word.islower() or VOWELS & set(word)
                or word in KNOWN_MEANINGS or word in COMMON_WORDS or word in exclude
                or (real and is_known_word(word)) or word in DENY):
            continue
        if len(tokenizer.tokenize(word)) == 1:  # it must come back as the same one token
            found.append(word)
        if len(found) >= n:
            break
    return found
