"""Prompts: the identifier token and the class noun, put together; per-photo captions.

DreamBooth names the subject with a rare identifier ("zshq") placed before its class noun
("dog"): "a photo of zshq dog". The class noun lets the model start from what it already knows
about dogs; the identifier carries what is particular to yours. The class prompt ("a photo of
dog") is the same sentence without the identifier, for prior preservation.

A caption can say more about one photo than the shared prompt ("a photo of {token} {class} on
the beach"): then the model can put the beach on the words "on the beach" instead of learning
it as part of the subject. A `.txt` file next to a photo (dog1.jpg -> dog1.txt) holds its
caption; `{token}` and `{class}` in it (or in instance_prompt) become the identifier and the
class noun.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

from .errors import ConfigError

__all__ = ["INSTANCE_TEMPLATE", "CLASS_TEMPLATE", "fill_template", "token_ids", "photo_captions",
           "safe_filename", "TEMPLATE_FIELDS", "OBJECT_PROMPTS", "LIVE_PROMPTS",
           "LIVE_CLASSES", "evaluation_prompts"]

TEMPLATE_FIELDS = ("token", "class")


# The paper's prompt forms: "a [identifier] [class noun]" and "a [class noun]" (§3.3).
INSTANCE_TEMPLATE = "a photo of {token} {class}"
CLASS_TEMPLATE = "a photo of {class}"


def fill_template(template: str, identifier: str, class_noun: str,
                  setting: str = "instance_prompt") -> str:
    """'a {token} {class} on the beach' -> 'a zshq dog on the beach'."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template)
                 if name is not None]
    except ValueError:  # a lone { or }
        raise ConfigError(setting, template, "has a lone brace; write {{ and }} for literal "
                          "braces, {token} for the identifier and {class} for the class noun"
                          ) from None
    unknown = [n for n in names if n not in TEMPLATE_FIELDS]
    if unknown:
        raise ConfigError(setting, template,
                          f"'{{{unknown[0]}}}' is not a template field; use {{token}} for the "
                          f"identifier and {{class}} for the class noun (write {{{{ and }}}} "
                          f"for literal braces)")
    if "class" in names and not class_noun.strip():
        raise ConfigError("class_noun", class_noun, f"{setting} uses {{class}}: say what the "
                          f"subject is ('dog', 'person')")
    return template.format(token=identifier, **{"class": class_noun})


def photo_captions(photos, default: str, identifier: str, class_noun: str,
                   extension: str = ".txt") -> list[str]:
    """One caption per photo: its sidecar text file if there is one, else `default`.

    An empty or whitespace-only sidecar falls back to `default` (editors leave such files).
    """
    captions = []
    for photo in photos:
        side = Path(photo).with_suffix(extension)
        text = ""
        if side.is_file():
            try:
                text = side.read_text(encoding="utf-8").strip()
            except UnicodeDecodeError:
                raise ConfigError("instance_dir", str(side), "this caption file is not UTF-8 "
                                  "text; save it as UTF-8 or delete it") from None
        text = " ".join(text.split())  # one line: newlines in a caption mean nothing to CLIP
        captions.append(fill_template(text, identifier, class_noun, setting=str(side))
                        if text else default)
    return captions


def token_ids(tokenizer, prompts, device):
    """Prompts as the token ids a CLIP text encoder reads: padded to the tokenizer's length
    (77 for Stable Diffusion), longer prompts cut there."""
    return tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids.to(device)


def safe_filename(text: str, limit: int = 60) -> str:
    """A file-name stem from free text (a prompt): letters, digits, '-' and '_' only, so no
    '../' or '/' can lead outside the folder; 'image' if nothing is left."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_-")[:limit]
    return stem or "image"


# The DreamBooth paper's evaluation prompts (its dataset's prompts_and_classes.txt): 25 for
# objects, 25 for live subjects; the first 10 (contexts) and last 5 (properties) are shared.
_PLACES = ["in the jungle", "in the snow", "on the beach", "on a cobblestone street",
           "on top of pink fabric", "on top of a wooden floor", "with a city in the background",
           "with a mountain in the background", "with a blue house in the background",
           "on top of a purple rug in a forest"]
_PROPERTIES = ["a red {token} {class}", "a purple {token} {class}", "a shiny {token} {class}",
               "a wet {token} {class}", "a cube shaped {token} {class}"]
OBJECT_PROMPTS = [f"a {{token}} {{class}} {p}" for p in _PLACES + [
    "with a wheat field in the background",
    "with a tree and autumn leaves in the background",
    "with the Eiffel Tower in the background", "floating on top of water",
    "floating in an ocean of milk", "on top of green grass with sunflowers around it",
    "on top of a mirror", "on top of the sidewalk in a crowded street",
    "on top of a dirt road", "on top of a white rug"]] + _PROPERTIES
LIVE_PROMPTS = [f"a {{token}} {{class}} {p}" for p in _PLACES + [
    "wearing a red hat", "wearing a santa hat", "wearing a rainbow scarf",
    "wearing a black top hat and a monocle", "in a chef outfit", "in a firefighter outfit",
    "in a police outfit", "wearing pink glasses", "wearing a yellow shirt",
    "in a purple wizard outfit"]] + _PROPERTIES
LIVE_CLASSES = {"dog", "cat", "person", "man", "woman", "boy", "girl", "baby", "child",
                "puppy", "kitten", "horse", "bird", "rabbit"}


def evaluation_prompts(identifier: str, class_noun: str, n: int | None = None) -> list[str]:
    """The paper's prompts for this subject: live-subject ones for animals and people."""
    words = class_noun.strip().lower().split()
    live = bool(words) and words[-1] in LIVE_CLASSES
    chosen = (LIVE_PROMPTS if live else OBJECT_PROMPTS)[:n]
    return [fill_template(t, identifier, class_noun) for t in chosen]
