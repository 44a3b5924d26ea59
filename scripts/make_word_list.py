"""Regenerate the identifier check's word data in dreamkit/models/vocab/ (dreamkit/models/tokens.py):

    known_words.tsv.gz     every whole-word token of Stable Diffusion's CLIP vocabulary that is
                           a word, name, brand or abbreviation people write: word, zipf (log10
                           of its frequency per billion words, the highest over the languages),
                           the language of that figure
    meanings.tsv           the strongest meanings, by category (people, brands, franchises and
                           characters, styles, places: the lists below; profanity and hate terms:
                           better-profanity's word list), single tokens only
    identifier_pool.txt    rare single tokens that decode to short non-words, for suggestions

    python -m venv /tmp/wf && /tmp/wf/bin/pip install wordfreq==3.1.1 better-profanity==0.7.0
    export PYTHONPATH=.:/tmp/wf/lib/python3.11/site-packages D=/usr/share/dict
    .venv/bin/python scripts/make_word_list.py en=$D/american-english-huge \\
        en=$D/british-english-large fr=$D/french de=$D/ngerman

LANG=FILE: a dictionary (one word per line, a hunspell "/flags" tail ignored), whose words
count as known too, with a zipf of 0 (too rare for the word counts). The shipped data uses
Debian's word lists (packages wamerican-huge 2020.12.07, wbritish-large, wfrench 1.2.7,
wngerman 20161207; /usr/share/dict once installed, or `apt-get download` and `dpkg-deb -x`).
Other dictionaries were kept out, to check the result on (dreamkit/models/vocab/README.md).

Sources: wordfreq 3.1.1 (Robyn Speer et al., data CC BY-SA 4.0): the "large" lists of 13
languages and the "best" lists of 14 more, every word seen at least about once per 100 million
words (Wikipedia, subtitles, news, books, web text, Twitter, Reddit); better-profanity 0.7.0's
word list (MIT); the dictionaries above (SCOWL and others, free licences). None is a dependency
of dreamkit: only what is made from them is shipped.
"""

import gzip
import math
import re
import sys
from pathlib import Path

import better_profanity
from wordfreq import get_frequency_dict

from dreamkit.models.tokens import frequent_merge, sd_vocabulary_tokenizer
from dreamkit.models.words import POOL_RULES, is_pool_candidate

OUT = Path(__file__).resolve().parents[1] / "dreamkit" / "models" / "vocab"
LARGE = ["ca", "cs", "de", "en", "es", "fi", "fr", "it", "nb", "nl", "pl", "pt", "sv"]
BEST = ["da", "hu", "id", "is", "lt", "lv", "ms", "ro", "sh", "sk", "sl", "tr", "vi", "fil"]
# The strongest meanings people give single tokens, written down by category
CURATED = {
    "a well-known person": """hitler stalin mussolini lenin mao putin trump obama biden clinton
        churchill gandhi napoleon caesar cleopatra einstein newton darwin tesla edison jesus
        buddha muhammad moses kennedy lincoln reagan thatcher merkel macron castro osama laden
        saddam franco picasso rembrandt monet dali warhol banksy raphael michelangelo leonardo
        turner pollock munch hopper rockwell burton kubrick spielberg tarantino nolan lynch
        beyonce rihanna madonna drake adele shakira eminem bieber swift gaga elvis beatles prince
        bowie mozart beethoven bach chopin kanye snoop tupac bts blackpink ariana selena miley
        katy britney tolkien shakespeare dickens hemingway orwell lovecraft poe rowling messi
        ronaldo pele jordan lebron kobe federer nadal serena bolt tyson pitt angelina jolie
        dicaprio keanu depp clooney arnold stallone marilyn monroe audrey hepburn chaplin musk
        zuckerberg gates bezos""",
    "a brand": """nike adidas gucci prada vogue apple samsung coca pepsi lego disney pixar marvel
        nintendo sony ferrari porsche lamborghini bmw mercedes audi toyota honda ford chevrolet
        jeep volvo google microsoft amazon facebook instagram twitter youtube netflix spotify
        starbucks mcdonalds ikea rolex chanel dior vuitton hermes versace supreme zara puma
        reebok canon nikon leica polaroid kodak fujifilm gopro iphone ipad android xbox
        playstation sega atari hasbro mattel heineken budweiser redbull nasa ibm intel nvidia
        amd dell lenovo boeing airbus emirates""",
    "a franchise or character": """mario luigi zelda pokemon pikachu sonic batman superman
        spiderman ironman hulk thor loki joker wolverine deadpool naruto goku luffy shrek elsa
        olaf simba nemo woody mickey minnie goofy garfield snoopy scooby homer simpson bart
        spongebob yoda vader skywalker jedi sith stormtrooper hobbit potter hogwarts hermione
        minecraft fortnite roblox halo doom tetris kirby yoshi bowser godzilla transformers
        optimus barbie gundam avatar katniss dracula frankenstein sherlock hercules zeus odin""",
    "an art or photo style (it changes how pictures look)": """cyberpunk steampunk anime manga
        chibi kawaii pixel pixelart baroque gothic renaissance impressionism surrealism popart
        minimalism watercolor watercolour acrylic sketch charcoal cel hdr octane unreal blender
        render rendering realism noir vintage retro cinematic dramatic trending deviantart
        pinterest nsfw""",
    "a place": """paris london tokyo newyork nyc rome berlin moscow beijing dubai venice
        hollywood vegas egypt mars moon hawaii sahara everest""",
}
PROFANITY = "profanity or a hate term (it may trip safety filters)"


def known_words(whole: set) -> dict:
    """{word: (zipf, language)} of the whole-word tokens in any of the lists."""
    found = {}
    for lang in LARGE + BEST:
        for word, freq in get_frequency_dict(lang, "large" if lang in LARGE else "best").items():
            if word in whole:
                zipf = round(math.log10(freq) + 9, 2)
                if zipf > found.get(word, (-1.0, ""))[0]:
                    found[word] = (zipf, lang)
    for word, freq in get_frequency_dict("en", "large").items():  # English, where it is used
        if word in found:
            found[word] = (round(math.log10(freq) + 9, 2), "en")
    return found


def dictionary_words(whole: set, dictionaries: list) -> dict:
    """{word: (0.0, language)} of the whole-word tokens in the dictionaries ("LANG=FILE"): words
    a dictionary has and the word counts do not (rare words, names, old forms), plain ASCII."""
    found = {}
    for spec in dictionaries:
        lang, _, path = spec.partition("=")
        for line in Path(path).read_text(encoding="utf-8", errors="ignore").splitlines():
            word = line.split("/")[0].strip().lower()
            if word in whole and word.isascii() and word.isalpha():
                found.setdefault(word, (0.0, lang))
    return found


def main(dictionaries: list) -> None:
    tokenizer = sd_vocabulary_tokenizer()
    vocab = tokenizer.get_vocab()
    whole = {t[:-4]: i for t, i in vocab.items() if t.endswith("</w>") and len(t) > 4}
    known = {**dictionary_words(set(whole), dictionaries), **known_words(set(whole))}
    rows = [f"{w}\t{z}\t{lang}" for w, (z, lang) in sorted(known.items())]
    (OUT / "known_words.tsv.gz").write_bytes(gzip.compress(("\n".join(rows) + "\n").encode(),
                                                           mtime=0))
    single = lambda w: len(tokenizer.tokenize(w)) == 1  # noqa: E731
    bad = Path(better_profanity.__file__).with_name("profanity_wordlist.txt").read_text()
    meanings = {w: PROFANITY for w in bad.split() if re.fullmatch(r"[a-z]+", w) and single(w)}
    meanings.update({w: cat for cat, text in CURATED.items() for w in text.split()
                     if single(w)})  # a person on both lists is named as the person
    (OUT / "meanings.tsv").write_text("".join(f"{w}\t{c}\n" for w, c in sorted(meanings.items())))
    # the pool's phrase, fragment and near-word rules read the frequent words of every length
    frequent = {}
    for lang in LARGE:
        for w, f in get_frequency_dict(lang, "large").items():
            zipf = math.log10(f) + 9
            if zipf >= POOL_RULES["near_word_zipf"] and w.isascii() and w.isalpha():
                frequent[w] = max(zipf, frequent.get(w, 0))
    common = {w for w, z in frequent.items() if len(w) >= 2 and z >= POOL_RULES["phrase_zipf"]}
    low, high = POOL_RULES["letters"]
    starts_ends = {piece for w, z in frequent.items() if z >= POOL_RULES["fragment_zipf"]
                   for k in range(low, high + 1) if len(w) > k
                   for piece in (w[:k], w[-k:])}
    starts_ends |= {piece for w in frequent for piece in (w[1:], w[:-1])}  # near_word_zipf
    pool = sorted((w for w in whole if w not in known and w not in meanings
                   and not frequent_merge(vocab, w + "</w>")
                   and is_pool_candidate(w, common, starts_ends)),
                  key=lambda w: (len(w), -whole[w]))
    (OUT / "identifier_pool.txt").write_text("\n".join(pool) + "\n")
    print(f"{len(known)} known words of {len(whole)} whole-word tokens, {len(meanings)} "
          f"meanings, {len(pool)} in the identifier pool -> {OUT}")


if __name__ == "__main__":
    if not sys.argv[1:] or any("=" not in a for a in sys.argv[1:]):  # the shipped data has them
        sys.exit(__doc__)
    main(sys.argv[1:])
