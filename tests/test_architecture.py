"""The package's shape, as README's "The parts" describes it: no import cycles, the imports
each part may not make, short functions and modules, a loop that never prints."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dreamkit"

PARTS = {
    "Faces": ["cli", "commands", "__main__", "widgets", "live", "classroom", "notebook"],
    "Loop": ["train", "run", "checkpoint", "rng", "callbacks"],
    "Step": ["step", "loss", "optim"],
    "Planner": ["planner", "memory", "shapes"],
    "Inputs": ["data", "prior", "cache", "doctor", "photo_measures", "tokens"],
    "Models": ["models", "sdxl", "lora", "layouts"],
    "Outputs": ["sample", "export", "hub", "viewer", "portable", "space"],
    "Eval": ["evaluate", "scoring"],
    "Config": ["config", "concepts", "prompts", "errors", "checks"],
    "Toy": ["toy", "demo"],
    "Env": ["env"],
    "Testing": ["testing"],
}
# (from, to): imports a part must not make, and why
RULES = {
    ("Loop", "Faces"): "the loop knows no screen: messages go out through callbacks",
    ("Loop", "Planner"): "the loop does not plan: faces call the planner and pass the plan",
    ("Planner", "Loop"): "the planner measures the step, not the loop",
    ("Step", "Loop"): "the step's math knows no checkpoints or files",
    ("Loop", "Eval"): "scoring plugs into the loop as a callback",
    ("Eval", "Toy"): "the toy scorer plugs into Eval, not Eval into the toy",
    ("Loop", "Toy"): "the loop treats the toy model like any model",
}
LONG_MODULES = {"config.py"}  # one dataclass of knobs, each with its reason (README says why)


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
    return {m for m in found if m in modules and m != name}


def _part(module: str) -> str | None:
    short = module.split(".")[1] if "." in module else "__init__"
    for part, names in PARTS.items():
        if short in names:
            return part
    return None


@pytest.fixture(scope="module")
def graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_every_module_belongs_to_a_part(graph):
    loose = [m for m in graph if m != "dreamkit" and _part(m) is None]
    assert not loose, f"add these to README's parts and to PARTS here: {loose}"


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


def test_parts_keep_their_import_rules(graph):
    broken = []
    for m, targets in graph.items():
        for t in targets:
            a, b = _part(m), _part(t)
            if (a, b) in RULES:
                broken.append(f"{m} -> {t}: {RULES[(a, b)]}")
            if b == "Testing" and a != "Testing":
                broken.append(f"{m} -> {t}: shipped code never imports test helpers")
            if a == "Config" and b != "Config":
                broken.append(f"{m} -> {t}: Config is plain data")
    assert not broken, "\n".join(broken)


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


def test_train_reads_top_to_bottom_and_the_loop_never_prints():
    tree = ast.parse((PACKAGE / "train.py").read_text())
    train = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train")
    assert train.end_lineno - train.lineno + 1 <= 60
    for name in ("train.py", "run.py", "checkpoint.py", "step.py", "loss.py"):
        calls = [n for n in ast.walk(ast.parse((PACKAGE / name).read_text()))
                 if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"]
        assert not calls, f"{name} prints (line {calls[0].lineno}); use the callbacks"
