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
vocabulary).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TokenCheck", "check_identifier", "suggest_identifiers", "KNOWN_MEANINGS",
           "COMMON_WORDS"]

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
    if ident in KNOWN_MEANINGS:
        check.warnings.append(f"has a meaning the model may know: {KNOWN_MEANINGS[ident]}; "
                              f"training must overcome it")
    nouns = set(class_noun.lower().split())
    if ident in COMMON_WORDS or ident in nouns:
        what = "is your class noun" if ident in nouns else "is a common word"
        check.warnings.append(f"{what}: the model already has a strong meaning for it, and "
                              f"'a photo of {ident}' would change for everyone's {ident}")
    elif len(tokens) == 1 and _word(tokens[0]) and len(vocab) > 10_000:
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
    half = 512 + (len(vocab) - 512) // 2 if len(vocab) > 10_000 else 0
    found = []
    for token, idx in sorted(vocab.items(), key=lambda kv: -kv[1]):
        word = _word(token)
        if (idx < half or not word or not (3 <= len(word) <= 4) or not word.isascii()
                or not word.isalpha() or not word.islower() or VOWELS & set(word)
                or word in KNOWN_MEANINGS or word in COMMON_WORDS or word in exclude):
            continue
        if len(tokenizer.tokenize(word)) == 1:  # it must come back as the same one token
            found.append(word)
        if len(found) >= n:
            break
    return found
