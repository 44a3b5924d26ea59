"""Prompts: the identifier token and the class noun, put together.

DreamBooth names the subject with a rare identifier ("sks") placed before its class noun
("dog"): "a photo of sks dog". The class noun lets the model start from what it already knows
about dogs; the identifier carries what is particular to yours. The class prompt ("a photo of
dog") is the same sentence without the identifier, for prior preservation.
"""

from __future__ import annotations

__all__ = ["instance_prompt", "class_prompt"]


def instance_prompt(identifier: str, class_noun: str) -> str:
    return f"a photo of {identifier} {class_noun}"


def class_prompt(class_noun: str) -> str:
    return f"a photo of {class_noun}"
