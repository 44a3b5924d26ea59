"""Regenerate dreamkit/vocab/known_short_words.txt.gz: the English words, names and
abbreviations of 1-4 letters that people use, for the identifier check (dreamkit/tokens.py).

    python -m venv /tmp/wf && /tmp/wf/bin/pip install wordfreq==3.1.1
    /tmp/wf/bin/python scripts/make_word_list.py

Source: wordfreq's "large" English list (Wikipedia, subtitles, news, books, web text, Twitter,
Reddit), which lists every word seen at least about once per 100 million words. wordfreq is not
a dependency of dreamkit: only this list, made from it, is shipped.
"""

import gzip
from pathlib import Path

from wordfreq import iter_wordlist

OUT = Path(__file__).resolve().parents[1] / "dreamkit" / "models" / "vocab" / "known_short_words.txt.gz"

words = sorted({w.lower() for w in iter_wordlist("en", wordlist="large")
                if w.isascii() and w.isalpha() and 1 <= len(w) <= 4})
OUT.write_bytes(gzip.compress(("\n".join(words) + "\n").encode(), mtime=0))
print(f"{len(words)} words -> {OUT}")
