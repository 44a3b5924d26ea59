"""The module names of the flat layout (before 2026-12), kept for code and saved notebooks.

A notebook saved on Drive says `from dreamkit.planner import plan` or `dreamkit.env.mount_drive()`;
each old name now stands for the module of the layer that does its job (`env`'s Drive and upload
helpers moved to the notebook face, so it stands for both). `install()` puts a finder on
`sys.meta_path` that answers `import dreamkit.<old name>` with that module. New code imports the
layer's module (the table in README.md).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import types

__all__ = ["OLD_NAMES", "install", "old_module"]

OLD_NAMES = {  # old name -> the module(s) that hold its names now
    "errors": ("core.errors",), "config": ("core.config",), "concepts": ("core.concepts",),
    "prompts": ("core.prompts",), "checks": ("core.checks",), "callbacks": ("core.callbacks",),
    "env": ("core.env", "ui.colab", "core.noise"),
    "checkpoint": ("storage.checkpoint",), "rng": ("storage.rng",),
    "sdxl": ("models.sdxl",), "lora": ("models.lora",), "layouts": ("models.layouts",),
    "portable": ("models.portable",), "tokens": ("models.tokens",),
    "sample": ("outputs.sample",), "export": ("outputs.export",), "hub": ("outputs.hub",),
    "viewer": ("outputs.viewer",),
    "data": ("inputs.photos",), "prior": ("inputs.prior",), "cache": ("inputs.cache",),
    "doctor": ("inputs.doctor",), "photo_measures": ("inputs.photo_measures",),
    "run": ("training.run",), "step": ("training.step",), "loss": ("training.loss",),
    "optim": ("training.optim",),
    "planner": ("planning.planner",), "memory": ("planning.memory",),
    "shapes": ("planning.shapes",), "space": ("planning.space",),
    "evaluate": ("evaluation.evaluate",), "scoring": ("evaluation.scoring",),
    "demo": ("toy.demo",),
    "cli": ("ui.cli",), "commands": ("ui.commands",), "widgets": ("ui.widgets",),
    "live": ("ui.live",), "classroom": ("ui.classroom",), "notebook": ("ui.notebook",),
}
# `dreamkit.models` is now the models layer (its package answers the old names itself), and
# `dreamkit.train` is the function train, as it always was: neither needs a finder.


def old_module(name: str) -> types.ModuleType:
    """The module an old name stands for: the new module itself, or (env) one that looks up
    each name in the modules that share the old one's job."""
    targets = [importlib.import_module(f"dreamkit.{t}") for t in OLD_NAMES[name]]
    if len(targets) == 1:
        return targets[0]
    joined = types.ModuleType(f"dreamkit.{name}", f"dreamkit.{name}: now "
                              + ", ".join(f"dreamkit.{t}" for t in OLD_NAMES[name]))

    def lookup(attr: str):
        for module in targets:
            if hasattr(module, attr):
                return getattr(module, attr)
        raise AttributeError(f"module 'dreamkit.{name}' has no attribute {attr!r}")
    joined.__getattr__ = lookup
    joined.__all__ = [n for m in targets for n in getattr(m, "__all__", ())]
    return joined


class _OldNameFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.partition(".")
        if package == "dreamkit" and name in OLD_NAMES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return None  # a placeholder; exec_module puts the real module in its place

    def exec_module(self, module):
        # the import system hands back what sys.modules holds under the name after this call
        sys.modules[module.__name__] = old_module(module.__name__.partition(".")[2])


def install() -> None:
    if not any(isinstance(f, _OldNameFinder) for f in sys.meta_path):
        sys.meta_path.append(_OldNameFinder())
