"""Several subjects in one run: a list of concepts, each with its photos, prompts and class.

A concept is what the single-subject settings describe: photos (`instance_dir`), the identifier
that names them, the class noun, the prompts and the class images for prior preservation.
`TrainConfig.concepts` holds a list of them as plain dicts (JSON in a config file or on the
command line); a key a concept leaves out comes from the run's own setting of that name, so

    concepts=[{"instance_dir": "photos/rex", "identifier": "zshq", "class_noun": "dog"},
              {"instance_dir": "photos/tom", "identifier": "tzky", "class_noun": "cat"}]

trains two subjects at once, each anchored to its own class (and its own class images). The
same format as the `concepts_list` JSON of popular DreamBooth forks, with their key names
(instance_data_dir, class_data_dir) accepted too.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from . import checks, prompts
from .errors import ConfigError

__all__ = ["Concept", "resolve_concepts", "class_jobs", "CONCEPT_KEYS"]

_ALIASES = {"instance_data_dir": "instance_dir", "class_data_dir": "class_dir"}


@dataclass(frozen=True)
class Concept:
    instance_dir: str
    identifier: str
    class_noun: str
    instance_prompt: str  # resolved: templates filled, never empty
    class_prompt: str  # resolved: "" when the concept has no class (no prior preservation)
    class_dir: str  # resolved folder of its class images
    num_class_images: int
    class_prompt_variants: tuple = ()  # resolved; class images are drawn from all, in turn

    @property
    def class_prompts(self) -> tuple:
        return (self.class_prompt, *self.class_prompt_variants) if self.class_prompt else ()


CONCEPT_KEYS = tuple(f.name for f in fields(Concept))


def _one(config, raw: dict, where: str, many: bool) -> Concept:
    """One complete concept; `where` prefixes the names in errors ('concepts[1].' or '')."""
    if not isinstance(raw, dict):
        raise ConfigError(where.rstrip("."), raw, "each concept is an object like "
                          "{\"instance_dir\": \"photos/rex\", \"identifier\": \"zshq\", "
                          "\"class_noun\": \"dog\"}")
    raw = {_ALIASES.get(k, k): v for k, v in raw.items()}
    unknown = sorted(set(raw) - set(CONCEPT_KEYS))
    if unknown:
        raise ConfigError(f"{where}{unknown[0]}", raw[unknown[0]],
                          f"is not a concept key; use {', '.join(CONCEPT_KEYS)}")
    get = lambda k: raw.get(k, getattr(config, k))  # noqa: E731  (the run's setting by default)
    for k in ("instance_dir", "identifier", "class_noun", "instance_prompt", "class_prompt",
              "class_dir"):
        if not isinstance(get(k), str):
            raise ConfigError(f"{where}{k}", get(k), "must be text")
    ident, noun = get("identifier").strip(), get("class_noun").strip()
    if not ident or " " in ident:
        raise ConfigError(f"{where}identifier", get("identifier"),
                          "use one rare word without spaces, e.g. 'tzky'")
    num = get("num_class_images")
    if not isinstance(num, int) or isinstance(num, bool) or num < 0:
        raise ConfigError(f"{where}num_class_images", num, "must be a whole number, 0 or more")
    if not get("instance_prompt") and not noun:
        raise ConfigError(f"{where}class_noun", noun, "say what the subject is ('dog', "
                          "'person', 'backpack') so the prompt 'a photo of zshq dog' can be "
                          "made, or give instance_prompt")
    instance = prompts.fill_template(get("instance_prompt") or prompts.INSTANCE_TEMPLATE,
                                     ident, noun, setting=f"{where}instance_prompt")
    class_t = get("class_prompt") or (prompts.CLASS_TEMPLATE if noun else "")
    klass = prompts.fill_template(class_t, ident, noun, setting=f"{where}class_prompt") \
        if class_t else ""
    class_dir = raw.get("class_dir") or config.class_dir
    if not class_dir:
        root = Path(config.output_dir) / "class_images"
        # One folder per class prompt: subjects of the same class share their class images.
        class_dir = str(root / prompts.safe_filename(klass)) if many else str(root)
    checks.prompt_list(f"{where}class_prompt_variants", get("class_prompt_variants"))
    variants = tuple(prompts.fill_template(v, ident, noun, setting=f"{where}class_prompt_variants")
                     for v in get("class_prompt_variants")) if klass else ()
    return Concept(str(get("instance_dir")), ident, noun, instance, klass, class_dir, num,
                   variants)


def resolve_concepts(config) -> list[Concept]:
    """The run's concepts, each complete; the single subject of the run when `concepts` is
    empty. Raises ConfigError naming the concept and key that cannot work."""
    raws = config.concepts or [{}]
    if not isinstance(raws, list):
        raise ConfigError("concepts", raws, "give a list of concepts (or an empty list)")
    many = len(raws) > 1
    out = [_one(config, raw, f"concepts[{i}]." if config.concepts else "", many)
           for i, raw in enumerate(raws)]
    seen = {}
    for i, c in enumerate(out):  # one word can only come to mean one subject
        if c.identifier in seen:
            j = seen[c.identifier]
            raise ConfigError(f"concepts[{i}].identifier", c.identifier,
                              f"concepts[{j}] already uses it (for '{out[j].class_noun}'); "
                              f"give each subject its own identifier")
        seen[c.identifier] = i
    return out


def class_jobs(concepts, with_prior: bool) -> list[tuple[str, tuple, int]]:
    """(class_dir, class prompts, how many) per class-image folder; shared folders merged."""
    if not with_prior:
        return []
    jobs: dict[str, tuple[str, int]] = {}
    for i, c in enumerate(concepts):
        if not c.class_prompt:
            raise ConfigError(f"concepts[{i}].class_prompt", c.class_prompt,
                              "prior preservation needs a class prompt: give class_noun or "
                              "class_prompt, or turn with_prior_preservation off")
        prompt, num = jobs.get(c.class_dir, (c.class_prompts, 0))
        if prompt != c.class_prompts:
            raise ConfigError(f"concepts[{i}].class_dir", c.class_dir,
                              f"another concept fills this folder with {prompt[0]!r}; give "
                              f"this one ({c.class_prompt!r}) its own class_dir")
        jobs[c.class_dir] = (prompt, max(num, c.num_class_images))
    return [(d, p, n) for d, (p, n) in jobs.items()]
