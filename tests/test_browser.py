"""JupyterLab on localhost, the step-by-step notebook opened in headless Chromium with small
values typed into its forms, every cell run with Shift+Enter: each stage must finish without a
traceback, widgets must render as controls, and the stages that show pictures must show them.
A screenshot of every stage's output goes to a temporary folder (pytest's tmp_path;
scripts/browser_check.py --out DIR writes them where you want to look at them)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["1. Install dreamkit", "2. Connect Google Drive", "3. Choose the model",
          "4. Your photos", "4b. Captions", "5. Check the photos", "6. Settings",
          "6b. The settings, checked", "7. Class images", "8. Train", "9. Try your model",
          "10. Compare", "11. Measure", "12. Export", "13. Free space on Drive"]
PICTURES = ["4. Your photos", "5. Check the photos", "7. Class images", "9. Try your model",
            "10. Compare", "11. Measure"]
SAYS = {"12. Export": "from_single_file", "13. Free space on Drive": "in all)"}


@pytest.mark.slow
def test_every_stage_runs_in_a_real_browser(tmp_path):
    missing = [t for t in ("chromium", "chromedriver") if not shutil.which(t)]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: Debian's chromium and "
                    f"chromium-driver are needed (scripts/setup_env.sh installs them as root)")
    out = tmp_path / "browser-check"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "browser_check.py"), "--out",
                          str(out)], capture_output=True, text=True, timeout=900)
    result = json.loads((out / "result.json").read_text())
    assert run.returncode == 0 and result["ok"], (result, run.stdout[-3000:], run.stderr[-2000:])
    cells = {c["title"]: c for c in result["cells"]}
    for stage in STAGES:
        assert any(t.startswith(stage) for t in cells), (stage, list(cells))
    for stage in PICTURES:
        cell = next(c for t, c in cells.items() if t.startswith(stage))
        assert cell["images"] >= 1, (stage, cell["text"])
    assert result["caption_controls"] >= 5  # a caption box per photo and the Save button
    for stage, said in SAYS.items():  # the output area as the page shows it
        cell = next(c for t, c in cells.items() if t.startswith(stage))
        assert said in cell["text"], (stage, cell["text"])
    from PIL import Image
    for cell in result["cells"]:
        img = Image.open(cell["screenshot"])
        assert img.width >= 400 and len(set(img.convert("L").resize((32, 32)).getdata())) > 4
