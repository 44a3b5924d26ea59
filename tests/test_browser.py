"""JupyterLab on localhost, the quickstart opened in headless Chromium, its widget cell run:
the settings panel must render as controls. The screenshot goes to a temporary folder
(pytest's tmp_path; scripts/browser_check.py --out DIR writes one where you want it)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_widgets_render_as_controls_in_a_real_browser(tmp_path):
    missing = [t for t in ("chromium", "chromedriver") if not shutil.which(t)]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: Debian's chromium and "
                    f"chromium-driver are needed (scripts/setup_env.sh installs them as root)")
    out = tmp_path / "browser-check"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "browser_check.py"), "--out",
                          str(out)], capture_output=True, text=True, timeout=600)
    result = json.loads((out / "result.json").read_text())
    assert run.returncode == 0 and result["ok"], (result, run.stdout[-2000:], run.stderr[-2000:])
    assert result["controls"] >= 10 and not result["loading_text"]
    assert "Add a subject" in result["output_text"] and "identifier" in result["output_text"]
    shot = Path(result["screenshot"])
    from PIL import Image
    img = Image.open(shot)
    assert img.size == (1400, 1000) or img.width >= 1000
    assert len(set(img.convert("L").resize((64, 64)).getdata())) > 20  # not a blank page
