"""The notebooks: committed without outputs, linked to files that exist, each run top to bottom
on the CPU by the suite (the quickstart and the step-by-step one in
tests/test_notebook_forms.py, what they must show here; the classroom one in
tests/test_toy_demo.py)."""

import base64
import io
import json
import os
import re
from pathlib import Path

import nbformat
import numpy as np
from nbclient import NotebookClient
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_and_they_have_no_outputs():
    assert NOTEBOOKS, "notebooks/ holds no notebook"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        tags = [t for c in nb["cells"] for t in c.get("metadata", {}).get("tags", [])]
        assert tags.count("parameters") == 1, f"{path.name}: one cell tagged 'parameters'"
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, path.name
                assert "def " not in cell["source"] or "dreamkit" in cell["source"], \
                    f"{path.name}: notebooks import dreamkit instead of defining code"


def _inject(nb, params: dict) -> None:
    """papermill's convention: a cell tagged 'parameters' holds defaults; a cell inserted after
    it ('injected-parameters') overrides them."""
    idx = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])),
               None)
    assert idx is not None, "the notebook has no cell tagged 'parameters'"
    cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(idx + 1, cell)


def _run(path: Path, cwd: Path, params: dict | None = None, **env) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    if params:
        _inject(nb, params)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return nb


def _stderr(nb) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
                     if o.get("name") == "stderr")


def _clean(nb) -> None:
    """No library notes that mean nothing to the user (dreamkit.core.env.KNOWN_NOISE)."""
    err = _stderr(nb)
    for noise in ("torchvision", "kernels-community", "vocabulary was not modified"):
        assert noise not in err, err[-2000:]
    # a chart as a picture, not as text: a bare matplotlib Figure shows "<Figure size ...>"
    # unless pyplot happened to be imported before
    assert "<Figure size" not in _text(nb), _text(nb)[-2000:]


def _text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + json.dumps(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


# The quickstart runs whole on the CPU in the kernel its forms are then tried in
# (tests/test_notebook_forms.py): its first Run all is this one.
QUICKSTART_CPU = {"STEPS": 10, "NUM_CLASS_IMAGES": 3}  # nothing checked needs more


def check_quickstart_on_cpu(nb, folder: Path) -> None:
    """What the quickstart, run whole on the CPU in `folder`, must have shown and saved."""
    text = _text(nb)
    _clean(nb)
    assert "GPU: none (CPU only)" in text
    assert "instance prompt: a photo of sks toy" in text
    assert "step mode: one_pass" in text
    assert "memory plan: ~" in text and "on T4 (15.0 GiB): fits" in text  # the preflight
    # the measures beside the base model's, announced while they take their seconds
    assert "measuring your model" in text
    table = next(line for line in text.splitlines() if "base model" in line and "fine-tuned" in line)
    assert table.split() == ["base", "model", "fine-tuned"], table
    assert re.search(r"subject_fidelity\s+0\.\d{3}\s+[01]\.\d{3}", text), text[-1500:]
    pictures = [o["data"] for c in nb.cells for o in c.get("outputs", [])
                if {"image/png", "image/jpeg"} & set(o.get("data", {}))]
    assert len(pictures) >= 4  # the photos, the loss curves, samples, base vs yours
    assert all(len({"image/png", "image/jpeg"} & set(d)) == 1 for d in pictures)  # kept once
    for d in pictures:
        picture = Image.open(io.BytesIO(base64.b64decode(d.get("image/png") or d["image/jpeg"])))
        assert picture.width <= 1200, picture.size
    # "try your model": two rows labelled in the picture (ink left of the pictures)
    grid = Image.open(io.BytesIO(base64.b64decode(pictures[-1]["image/png"])))
    assert grid.size[1] == 2 * 2 * 64 + 2 * 2, grid.size  # two 64 px rows, twice as large
    assert (np.asarray(grid)[:, :40].min(axis=2) < 100).sum() > 50
    saved = folder / "saved.ipynb"
    nbformat.write(nb, str(saved))
    assert saved.stat().st_size < 800_000, saved.stat().st_size  # it was 3.2 MB
    run = folder / "quickstart-output" / "run"
    assert (run / "model_index.json").exists()
    assert len(list((run / "generated").glob("*/*.png"))) == 4  # "try your model", saved


def test_notebooks_and_docs_link_files_that_exist():
    """Tutorial readers follow the links to the code (a move of the modules once left 20 of
    them pointing at nothing)."""
    texts = [p.read_text() for p in NOTEBOOKS + [ROOT / "README.md"]
             + sorted((ROOT / "docs").glob("*.md"))]
    named = {m for t in texts for m in re.findall(r"dreamkit/[\w/]+\.py", t)}
    assert len(named) > 10
    missing = sorted(n for n in named if not (ROOT / n).is_file())
    assert not missing, missing


def _images(nb) -> int:
    """Pictures among the outputs (photos are kept as JPEG, the rest as PNG)."""
    return sum(bool({"image/png", "image/jpeg"} & set(o.get("data", {})))
               for c in nb.cells for o in c.get("outputs", []))


# The step-by-step notebook runs whole once, under the ipywidgets Colab ships, in the kernel its
# forms are then tried in (tests/test_notebook_forms.py): its first Run all is this one.
STEP_BY_STEP_CPU = {"STEPS": 10, "NUM_CLASS_IMAGES": 2, "SAMPLE_EVERY": 5, "TRY_STEPS": 3,
                    "COUNT": 1}


def check_step_by_step_on_cpu(nb, folder: Path) -> None:
    """What the step-by-step notebook, run whole on the CPU in `folder` with ipywidgets 7.7
    first on the kernel's path, must have shown and saved."""
    # the widgets the kernel made are 7.x's (their controls' protocol 1.5.0; 8.x's is 2.0.0)
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    versions = {m["model_module_version"] for m in state.values()
                if m["model_module"] == "@jupyter-widgets/controls"}
    names = {m["model_name"] for m in state.values()}
    assert versions == {"1.5.0"}, versions
    assert {"TextModel", "ButtonModel", "FloatProgressModel"} <= names, names  # captions, bar
    text = _text(nb)
    _clean(nb)
    assert "ipywidgets 7.7.5" in text  # the machine report names the kernel's widgets,
    # and that this environment's JupyterLab 4 could not draw them
    assert "whose widget front end draws only ipywidgets 8's widgets" in text
    assert "No GPU: the toy world on the CPU" in text
    assert "12 image(s)" in text and "0 problem(s)" in text  # the photos, checked
    assert "2 class images of 'a photo of a toy'" in text
    assert "best step: step " in text  # scored while training, the rule named a step
    assert _images(nb) >= 6  # photos, doctor grid, class images, curves, samples, comparisons
    run = folder / "step-by-step" / "run"
    assert (run / "model_index.json").exists() and (run / "scores.json").exists()
    assert [e["step"] for e in json.loads((run / "scores.json").read_text())["curve"]] == [5, 10]
    # try your model: the pictures shown are saved, with their settings, and open
    tried = sorted((run / "generated").glob("*/*.png"))
    assert len(tried) == 4 and Image.open(tried[0]).text["guidance"] == "7.5"
    # export: one file in the original layout (fp16) that diffusers loads back
    from diffusers import StableDiffusionPipeline
    export = folder / "step-by-step" / "run-export"
    pipe = StableDiffusionPipeline.from_single_file(str(export / "model.safetensors"),
                                                    config=str(export), local_files_only=True)
    assert pipe.unet.config.sample_size == 16 and "one file: pipe = StableDiffusionPipeline" in text
    # free Drive space: what the folder holds, before and after
    assert "the run folder holds:" in text and "freed " in text


# The classroom notebook runs from the installed wheel: tests/test_toy_demo.py.


def test_readme_has_an_open_in_colab_badge_per_notebook():
    readme = (ROOT / "README.md").read_text()
    repo = "dreamkit/dreamkit"
    assert f'"https://github.com/{repo}"' in (ROOT / "pyproject.toml").read_text()
    for path in NOTEBOOKS:
        link = f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/{path.name}"
        assert f"(colab-badge.svg)]({link})" in readme.replace(
            "https://colab.research.google.com/assets/", ""), path.name
        first = json.loads(path.read_text())["cells"]
        first = next(c for c in first if c["cell_type"] == "code")
        assert f"git+https://github.com/{repo}" in "".join(first["source"]), path.name
