import io
import json

import numpy as np
import pytest
from PIL import Image

from dreamkit.core import env
from dreamkit.core.callbacks import ProgressBar, StepInfo
from dreamkit.outputs.viewer import Picture, image_grid, plot_losses, show_grid
from dreamkit.ui import colab


def test_mount_drive_falls_back_to_a_local_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(colab, "is_colab", lambda: False)
    root = colab.mount_drive(local_fallback=str(tmp_path / "drive"))
    assert root == tmp_path / "drive" and root.is_dir()
    assert "Not on Colab" in capsys.readouterr().out


def test_save_uploads_keeps_names_inside_dest(tmp_path):
    written = colab.save_uploads({"../../evil.png": b"abc", "ok.jpg": b"xyz"}, tmp_path / "up")
    assert sorted(p.name for p in written) == ["evil.png", "ok.jpg"]
    assert all(p.parent == tmp_path / "up" for p in written)
    widget_style = [{"name": "w.png", "content": memoryview(b"123")}]  # ipywidgets 8
    assert colab.save_uploads(widget_style, tmp_path / "up")[0].read_bytes() == b"123"
    widget_7 = {"v.png": {"metadata": {"name": "v.png"}, "content": b"456"}}  # ipywidgets 7.7
    assert colab.save_uploads(widget_7, tmp_path / "up")[0].read_bytes() == b"456"


def test_upload_photos_from_a_folder_and_widget(tmp_path, photos, monkeypatch):
    monkeypatch.setattr(colab, "is_colab", lambda: False)
    copied = colab.upload_photos(tmp_path / "dest", source=photos)
    assert len(copied) == 4 and all(p.exists() for p in copied)
    widget = colab.upload_photos(tmp_path / "dest2")
    assert type(widget).__name__ == "FileUpload"


def test_env_report_on_cpu():
    rep = env.env_report()
    assert rep["gpu"] is None and rep["mixed_precision"] == "no"
    for key in ("torch", "diffusers", "transformers", "accelerate", "bitsandbytes"):
        assert rep[key]
    text = env.format_env_report(rep)
    assert "GPU: none (CPU only)" in text and "suggested mixed_precision: no" in text
    import ipywidgets  # the forms' library, whose version Colab decides, is named too
    assert f"ipywidgets {ipywidgets.__version__}" in text
    json.dumps(rep)  # plain data, safe to save next to a run


def test_old_widgets_beside_jupyterlab_4_are_named_with_the_fix(monkeypatch):
    """JupyterLab 4.6 with ipywidgets 7.7.5 showed "Module @jupyter-widgets/controls, version
    ^1.5.0 is not registered" in place of every form (measured with scripts/browser_check.py)."""
    import importlib.metadata
    installed = {"jupyterlab": "4.6.6"}

    def version(app):
        if app not in installed:
            raise importlib.metadata.PackageNotFoundError(app)
        return installed[app]
    monkeypatch.setattr(importlib.metadata, "version", version)
    note = env._widgets_note("7.7.5", colab=False)
    assert "ipywidgets 7.7.5 beside jupyterlab 4.6.6" in note and 'pip install -U "ipywidgets>=8"' in note
    assert env._widgets_note("8.1.9", colab=False) is None
    assert env._widgets_note("7.7.5", colab=True) is None  # Colab draws 7.x itself
    installed = {"jupyterlab": "3.6.8", "notebook": "6.5.7"}  # the front ends of 7.x
    assert env._widgets_note("7.7.5", colab=False) is None
    installed = {"notebook": "7.2.0"}
    assert "beside notebook 7.2.0" in env._widgets_note("7.7.5", colab=False)
    monkeypatch.setattr(env, "_widgets_note", lambda widgets, colab: "a note")
    assert "\n  note: a note" in env.format_env_report()


def test_image_grid_layout():
    imgs = [Image.new("RGB", (10, 8), (i * 40, 0, 0)) for i in range(5)]
    grid = image_grid(imgs, rows=2, pad=2)
    assert grid.size == (3 * 10 + 2 * 2, 2 * 8 + 2)
    arr = np.asarray(grid)
    assert tuple(arr[0, 12 + 1]) == (40, 0, 0)  # second image starts after one pad
    assert tuple(arr[10 + 1, 1]) == (120, 0, 0)  # row 2 starts with image 3
    assert tuple(arr[-1, -1]) == (255, 255, 255)  # the empty sixth cell stays white
    with pytest.raises(ValueError):
        image_grid([])


def test_labelled_grid_writes_each_rows_label_beside_it():
    imgs = [Image.new("RGB", (32, 32), (0, 90, 200)) for _ in range(4)]
    plain = image_grid(imgs, rows=2)
    grid = image_grid(imgs, rows=2, labels=["base: a photo of a toy", "fine-tuned: a photo"])
    extra = grid.width - plain.width
    assert extra > 60 and grid.height == plain.height
    arr = np.asarray(grid)
    for r in range(2):  # ink (dark text) in each row's label area, nothing else there
        label = arr[r * 34:r * 34 + 32, :extra]
        assert (label.min(axis=2) < 100).sum() > 20, r
        assert not (label == (0, 90, 200)).all(axis=2).any()
    assert (arr[:32, extra:extra + 32] == (0, 90, 200)).all()  # the pictures, moved right


def test_show_grid_and_loss_plot(tmp_path):
    grid = show_grid([Image.new("RGB", (8, 8), (0, 90, 200))] * 3, titles=["a", "b", "c"],
                     cols=2)
    arr = np.asarray(grid)
    assert grid.size == (2 * 164, 2 * (160 + 14 + 4))  # 2 x 2 cells, a title line under each
    assert (arr[:160, :160] == (0, 90, 200)).all()  # the first picture, 160 px wide
    assert (arr[160:174, :160].min(axis=2) < 100).sum() > 5  # its title: ink under it
    assert (arr[178:, 164:] == 255).all()  # the fourth cell: empty
    hist = [StepInfo(i, 20, 1.0, 1.0 / i, 0.5, 1e-5, 0.1, i * 0.1).as_dict() for i in range(1, 21)]
    fig = plot_losses(hist, tmp_path / "loss.png")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["instance loss (mean of 10)", "prior loss (class images) (mean of 10)"]
    assert Image.open(tmp_path / "loss.png").size[0] > 500
    no_prior = [dict(h, prior_loss=None) for h in hist]
    fig = plot_losses(no_prior)
    assert len(fig.axes[0].get_legend().get_texts()) == 1


def test_a_picture_is_kept_once_and_at_most_1200_px_wide():
    """IPython stores a bare PIL image as PNG and JPEG; a Picture as one of them, shrunk to
    MAX_SHOWN_WIDTH (a 6512 px sample grid made a saved notebook megabytes large)."""
    wide = Picture(Image.new("RGB", (6512, 4192), (10, 200, 30)))
    assert wide.size == (1200, 772) and wide._repr_jpeg_() is None
    assert Image.open(io.BytesIO(wide._repr_png_())).size == (1200, 772)
    toy = Picture(Image.new("RGB", (64, 64)), scale=3, fmt="jpeg")
    assert toy.size == (192, 192) and toy._repr_png_() is None
    assert Image.open(io.BytesIO(toy._repr_jpeg_())).format == "JPEG"


def test_progress_bar_callback(capsys):
    from dreamkit import TrainConfig
    bar = ProgressBar()
    bar.on_train_start(TrainConfig(max_train_steps=2), "two_pass", "set by step_mode")
    bar.on_step(StepInfo(1, 2, 1.5, 1.0, 0.5, 1e-5, 0.2, 0.2))
    assert bar.bar.n == 1 and "prior" in bar.bar.postfix
    bar.on_train_end(type("R", (), {"model_dir": None})())
    assert "step mode: two_pass" in capsys.readouterr().out


def test_a_figure_becomes_a_picture_that_shows_anywhere():
    from dreamkit.outputs.viewer import figure_image, plot_losses
    history = [{"step": i, "instance_loss": 1 / i, "prior_loss": 0.5} for i in range(1, 30)]
    img = figure_image(plot_losses(history))
    assert img.size == (700, 350) and img.mode == "RGB"  # figsize 7 x 3.5 at 100 dpi
    assert img._repr_png_().startswith(b"\x89PNG")  # what a notebook shows it as
    pixels = img.convert("RGB").resize((70, 35)).getdata()
    assert len(set(pixels)) > 10  # curves and axes, not a blank
