"""A CLIP BPE tokenizer written from a word list, offline.

Stable Diffusion reads prompts with CLIP's byte-level BPE tokenizer (vocab.json + merges.txt).
The toy world's base model uses a small one made here from its own words (world.vocabulary());
the test suite's tiny models use one too. Every byte is a token, so any text tokenizes; each
listed word is merged into one token, as a real CLIP vocabulary does for common words.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..models.tokens import bytes_to_unicode

__all__ = ["write_clip_tokenizer_files"]

_WORDS = ("a photo of sks dog cat toy person backpack the on in at beach snow grass night "
          "red green blue yellow square circle triangle with").split()


def write_clip_tokenizer_files(folder, words=_WORDS) -> Path:
    """Write vocab.json + merges.txt for a small CLIP BPE tokenizer.

    Every byte is a token (so any text tokenizes), and each word in `words` is merged into one
    token, as a real CLIP vocabulary does for common words.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = {}, {}  # dicts keep insertion order and look up fast

    def add(tok):
        vocab.setdefault(tok, len(vocab))

    for ch in bytes_to_unicode():
        add(ch)
        add(ch + "</w>")
    for word in words:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        cur = parts[0]
        for nxt in parts[1:]:
            pair = f"{cur} {nxt}"
            merges.setdefault(pair, None)
            cur = cur + nxt
            add(cur)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        add(special)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return folder
