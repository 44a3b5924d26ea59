"""What people write: the word data of the identifier check (models/tokens.py).

Shipped in vocab/ and made by scripts/make_word_list.py: the whole-word tokens of Stable
Diffusion's vocabulary that are words, names, brands or abbreviations in wordfreq's lists of 27
languages (with how often each is written) or in English, French and German dictionaries
(zipf 0: too rare to be counted), the strongest meanings by category, and the pool of rare
non-word tokens the check suggests (POOL_RULES says which).
"""

from __future__ import annotations

import functools
import gzip
import re
from importlib import resources

__all__ = ["DENY", "ABBREVIATIONS", "POOL_RULES", "is_pool_candidate", "word_info", "near_word",
           "is_known_word", "identifier_pool", "known_words", "meanings"]

# Not to be suggested or used as a name, whatever the lists say (profanity, NSFW words).
DENY = frozenset("""fck fuk fuc fk wtf stfu fml fkn sht shyt btch dmn cnt prn xxx sex nsfw
nude porn milf thot""".split())
# Abbreviation and hashtag families at the rare end of CLIP's vocabulary that lists miss.
ABBREVIATIONS = (re.compile(r"[a-z]{1,3}fc"),  # football clubs: swfc, bwfc, cpfc
                 re.compile(r"[a-z]{2,3}wx"),  # US state weather hashtags: ncwx, ohwx
                 re.compile(r"y[a-z]{2}"),  # Canadian airport codes: yyj, yqr
                 re.compile(r"[a-z]{2,3}fb"),  # high-school football: txhsfb, hsfb
                 re.compile(r"[a-z]{2,3}hs"),  # high schools: cchs, bhs
                 re.compile(r"afc[a-z]{1,2}|coy[a-z]"),  # more clubs and their chants: afcb, coyi
                 re.compile(r"bbc[a-z]{1,3}|[a-z]{1,3}tv"),  # broadcasters: bbcqt, foxtv
                 re.compile(r"[a-z]{1,4}pol|elxn|[a-z]{0,2}conf"))  # politics, conferences
# The identifier pool's rules (scripts/make_word_list.py applies them with wordfreq's lists)
POOL_RULES = {"letters": (3, 7),  # short, as the paper's
              "phrase_zipf": 4.0,  # two words this frequent glued together: a hashtag
              "fragment_zipf": 4.5,  # the start or end of a word this frequent: a fragment
              # a word this frequent (once per million words) less its first or last letter
              # reads as that word: gypt, xford, ugby (the check says so too: near_word)
              "near_word_zipf": 3.0}



def is_pool_candidate(word: str, common: set, starts_ends: set) -> bool:
    """POOL_RULES for a token that is in no word list. `common`: the words of at least
    phrase_zipf (what glued hashtags are made of); `starts_ends`: the first and last 3-7
    letters of the longer words of at least fragment_zipf, and the words of at least
    near_word_zipf less their first or last letter."""
    low, high = POOL_RULES["letters"]
    if not (low <= len(word) <= high and word.isascii() and word.isalpha() and word.islower()):
        return False
    if re.search(r"(.)\1\1", word) or any(p.fullmatch(word) for p in ABBREVIATIONS):
        return False
    if any(word[:k] in common and word[k:] in common for k in range(2, len(word) - 1)):
        return False
    return word not in starts_ends


def _vocab_file(name: str) -> bytes:
    return resources.files("dreamkit.models").joinpath(f"vocab/{name}").read_bytes()


@functools.lru_cache(maxsize=1)
def known_words() -> dict:
    """{word: (zipf, language)}: the whole-word tokens of SD's vocabulary that people write."""
    rows = gzip.decompress(_vocab_file("known_words.tsv.gz")).decode().splitlines()
    return {w: (float(z), lang) for w, z, lang in (r.split("\t") for r in rows)}


@functools.lru_cache(maxsize=1)
def meanings() -> dict:
    return dict(r.split("\t") for r in _vocab_file("meanings.tsv").decode().splitlines())


@functools.lru_cache(maxsize=1)
def identifier_pool() -> tuple:
    """Rare single tokens of SD's vocabulary that decode to short non-words (shortest first)."""
    return tuple(_vocab_file("identifier_pool.txt").decode().split())


_LANGUAGES = {"ca": "Catalan", "cs": "Czech", "de": "German", "en": "English",
              "es": "Spanish", "fi": "Finnish", "fr": "French", "it": "Italian",
              "nb": "Norwegian", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese",
              "sv": "Swedish", "da": "Danish", "hu": "Hungarian", "id": "Indonesian",
              "is": "Icelandic", "lt": "Lithuanian", "lv": "Latvian", "ms": "Malay",
              "ro": "Romanian", "sh": "Serbo-Croatian", "sk": "Slovak", "sl": "Slovenian",
              "tr": "Turkish", "vi": "Vietnamese", "fil": "Filipino"}


def word_info(word: str) -> str | None:
    """What a word means to people, as the check says it; None for a non-word."""
    w = word.lower()
    category = meanings().get(w)
    known = known_words().get(w)
    if category is None and known is None and w not in DENY \
            and not any(p.fullmatch(w) for p in ABBREVIATIONS):
        return None
    what = category or ("profanity or a term that should not name a subject" if w in DENY
                        else "an abbreviation or hashtag family" if known is None
                        else "a rare word" if known[0] == 0  # in a dictionary only
                        else "a word, name or abbreviation people write")
    if known is not None:
        zipf, lang = known
        language = _LANGUAGES.get(lang, lang)
        what += (f" (in {language} dictionaries, too rare for word counts)" if zipf == 0 else
                 f" (written about {10 ** zipf:,.0f} times per billion words, in {language} "
                 f"text)")
    return what


@functools.lru_cache(maxsize=1)
def _near_words() -> dict:
    """{a word less its first or last letter: the word}, for words of at least near_word_zipf."""
    near = {}
    for w, (zipf, _) in sorted(known_words().items(), key=lambda kv: -kv[1][0]):
        if zipf >= POOL_RULES["near_word_zipf"] and len(w) >= 4:
            for piece in (w[1:], w[:-1]):
                near.setdefault(piece, w)  # the most frequent word it reads as
    return near


def near_word(word: str) -> str | None:
    """The frequent word `word` reads as, being it less its first or last letter (gypt: egypt),
    or None. The identifier pool leaves such tokens out (POOL_RULES)."""
    w = word.lower()
    return None if w in known_words() else _near_words().get(w)


def is_known_word(word: str) -> bool:
    """A word, name, abbreviation or term people write (any length), or a denied one."""
    return word_info(word) is not None


