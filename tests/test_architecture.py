"""The package's shape, as README's "The parts" describes it: layers that are folders, imports
that only go down their order, no import cycle, short functions and modules, a loop that never
prints."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dreamkit"

# Bottom first: a module may import its own layer and the layers before it, never one after.
LAYERS = ("core", "storage", "models", "outputs", "inputs", "training", "planning",
          "evaluation", "toy", "ui")
# Modules beside the layers: the package's public face, the old names, the test helpers.
TOP = {"dreamkit": "the public names", "dreamkit.__main__": "python -m dreamkit",
       "dreamkit.old_names": "the flat layout's names", "dreamkit.testing": "test helpers"}
LONG_MODULES = {"config.py"}  # one dataclass of knobs, each with its reason (README says why)
# The one printer below ui/: the console view that train() shows when given no callbacks
# (it lives with the callbacks so that the loop can default to it without importing a face).
PRINTS_BELOW_UI = {("core/callbacks.py", "ProgressBar")}


def _modules() -> dict:
    """{dotted name: path} of every module of the package."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> set:
    """Every dreamkit module `name` imports, at the top or inside a function."""
    found = set()
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in modules else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            continue  # dreamkit/__init__ and old_names load by name: the top level, checked apart
    return {m for m in found if m in modules and m != name}


def layer(module: str) -> str | None:
    """The layer a module belongs to: its folder under dreamkit/ (None beside the layers)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_the_folders_are_the_layers():
    folders = sorted(p.name for p in PACKAGE.iterdir()
                     if p.is_dir() and (p / "__init__.py").is_file())
    assert folders == sorted(LAYERS), "a new folder: give it its place in LAYERS (and README)"
    loose = sorted(f"dreamkit.{p.stem}" if p.stem != "__init__" else "dreamkit"
                   for p in PACKAGE.glob("*.py"))
    assert loose == sorted(TOP), f"modules beside the layers: {loose}; put them in a layer"


def test_imports_only_go_down_the_layers(graph):
    broken = []
    for m, targets in graph.items():
        a = layer(m)
        for t in targets:
            b = layer(t)
            if t == "dreamkit.testing" and m != "dreamkit.testing":
                broken.append(f"{m} -> {t}: shipped code never imports test helpers")
            elif a and b is None:
                broken.append(f"{m} -> {t}: layers import layers, not the top level")
            elif a and LAYERS.index(b) > LAYERS.index(a):
                broken.append(f"{m} ({a}) -> {t} ({b}): {b} is above {a}")
    assert not broken, "\n".join(broken)


def test_no_import_cycles(graph):
    state, cycles = {}, []

    def visit(m, stack):
        state[m] = "open"
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles


def test_the_architecture_test_sees_an_upward_import(tmp_path):
    """The check itself: a core module importing the training layer is caught."""
    fake = tmp_path / "dreamkit" / "core"
    fake.mkdir(parents=True)
    (fake / "x.py").write_text("from ..training.loop import train\n")
    modules = {"dreamkit.core.x": fake / "x.py", "dreamkit.training.loop": Path("loop.py")}
    found = _imports("dreamkit.core.x", fake / "x.py", modules)
    assert found == {"dreamkit.training.loop"}
    assert LAYERS.index(layer("dreamkit.training.loop")) > LAYERS.index(layer("dreamkit.core.x"))


def test_functions_and_modules_are_short():
    long = []
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        if len(source.splitlines()) > 300 and path.name not in LONG_MODULES:
            long.append(f"{path.name}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long.append(f"{path.name}:{node.name}: {n} lines")
    assert not long, long


def test_train_reads_top_to_bottom_and_only_the_faces_print():
    tree = ast.parse((PACKAGE / "training" / "loop.py").read_text())
    train = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train")
    assert train.end_lineno - train.lineno + 1 <= 60
    printing = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "ui" or rel.name == "testing.py":
            continue
        tree = ast.parse(path.read_text())
        exempt = {id(n) for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
                  and (str(rel), c.name) in PRINTS_BELOW_UI for n in ast.walk(c)}
        for n in ast.walk(tree):
            if id(n) in exempt:
                continue
            if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print":
                printing.append(f"{rel}:{n.lineno}")
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):  # report=print
                for d in n.args.defaults + n.args.kw_defaults:
                    if isinstance(d, ast.Name) and d.id == "print":
                        printing.append(f"{rel}:{n.lineno} {n.name}(...=print)")
    assert not printing, f"only the faces (ui/) print; use callbacks or report=: {printing}"


def test_each_module_imports_by_its_folder_in_a_fresh_interpreter():
    """`from dreamkit.models import source` as a reader types it. A package's module-level
    __getattr__ (old names, lazy names) once answered such an import by importing loading.py,
    which asked it again while being imported: RecursionError in a fresh interpreter, for every
    module of models/, while the suite, with loading.py imported already, never saw it."""
    import subprocess
    import sys
    # one fresh interpreter per layer whose package answers unknown names itself
    lazy = [layer for layer in LAYERS if "def __getattr__" in (PACKAGE / layer /
                                                                "__init__.py").read_text()]
    assert lazy, "no package answers names lazily: this test checks nothing"
    for layer in lazy:
        # the lightest module first: the first import is the one that recursed
        modules = sorted((p for p in (PACKAGE / layer).glob("*.py") if p.stem != "__init__"),
                         key=lambda p: p.stat().st_size)
        code = "\n".join(f"from dreamkit.{layer} import {p.stem}" for p in modules)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True,
                             text=True, timeout=300, cwd=PACKAGE.parent)
        assert run.returncode == 0, (layer, run.stderr[-1500:])
