"""Colab's storage and upload, and their stand-ins elsewhere (the notebooks' first cells).

On Colab, `mount_drive()` mounts Google Drive (the only storage that survives a disconnect);
anywhere else it returns a local folder and says so in one line, so the same notebook runs on a
laptop, in CI and on Colab. `upload_photos()` is Colab's upload button there and a folder or an
ipywidgets FileUpload elsewhere.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..core.env import is_colab
from ..inputs.photos import find_images

# google, ipywidgets: imported where used (heavy or optional), so `import dreamkit` stays quick
__all__ = ["mount_drive", "upload_photos", "save_uploads"]


def mount_drive(mount_point: str = "/content/drive", local_fallback: str = "~/dreamkit-drive") -> Path:
    """Mount Google Drive on Colab and return 'MyDrive'; elsewhere return a local folder."""
    if is_colab():
        from google.colab import drive  # type: ignore
        drive.mount(mount_point)
        root = Path(mount_point) / "MyDrive"
    else:
        root = Path(local_fallback).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        print(f"Not on Colab: using the local folder {root} in place of Google Drive.")
    return root


def save_uploads(files, dest) -> list[Path]:
    """Write uploaded files into `dest`: {name: bytes} (Colab's dialog), or a FileUpload's
    value: ipywidgets 8's list of {"name", "content"}, ipywidgets 7's {name: {"content"}}."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    items = ((name, c["content"] if isinstance(c, dict) else c) for name, c in files.items()) \
        if isinstance(files, dict) else ((f["name"], f["content"]) for f in files)
    written = []
    for name, content in items:
        target = dest / Path(name).name  # never let an uploaded name escape dest
        target.write_bytes(bytes(content))
        written.append(target)
    return written


def upload_photos(dest, source: str | None = None):
    """Bring photos into `dest`.

    On Colab: the browser's upload dialog. With `source` (a folder): copies its images.
    Elsewhere: returns an ipywidgets FileUpload; files picked in it are saved to `dest`.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if source is not None:
        scan = find_images(source, setting="source")
        for p in scan.images:
            shutil.copy2(p, dest / p.name)
        return [dest / p.name for p in scan.images]
    if is_colab():
        from google.colab import files  # type: ignore
        return save_uploads(files.upload(), dest)
    import ipywidgets as w
    up = w.FileUpload(accept="image/*", multiple=True, description="Photos")
    up.observe(lambda change: save_uploads(change["new"], dest), names="value")
    return up
