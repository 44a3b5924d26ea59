"""Open the quickstart notebook in JupyterLab in headless Chromium, run its cells down to the
settings panel, and take a screenshot in which the panel is drawn as controls.

    python scripts/browser_check.py [--out browser-check]

Starts JupyterLab on 127.0.0.1 (a free port, a random token) with a copy of notebooks/,
drives Debian's chromium through chromedriver (selenium; no browser download), and writes
`<out>/quickstart_widgets.png` plus `<out>/result.json` (what was seen). Exit code 0 when the
widgets rendered as controls, 1 otherwise. tests/test_browser.py runs it.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIDGET_MARK = "ConfigPanel("  # the quickstart cell that shows the settings panel


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {seconds:.0f} s")


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1400,1000"):
        opts.add_argument(a)
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    driver = shutil.which("chromedriver") or "/usr/lib/chromium/chromedriver"
    return webdriver.Chrome(service=Service(driver), options=opts)


def check(out: Path, timeout: float = 180) -> dict:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dreamkit-lab-"))
    shutil.copytree(ROOT / "notebooks", work / "notebooks")
    port, token = _free_port(), secrets.token_hex(16)
    # No "get notified about Jupyter news?" pop-up over the screenshot.
    news = work / ".lab-settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "JUPYTER_CONFIG_DIR": str(work / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(work / ".rt"),
           "JUPYTERLAB_SETTINGS_DIR": str(work / ".lab-settings")}
    lab = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser",
                            f"--port={port}", "--ServerApp.ip=127.0.0.1",
                            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
                            "--LabApp.news_url=", "--allow-root"],
                           stdout=open(out / "jupyterlab.log", "w"), stderr=subprocess.STDOUT,
                           env=env)
    result = {"ok": False}
    driver = None
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/api?token={token}", 60)
        driver = _browser()
        driver.get(f"{base}/lab/tree/notebooks/01_quickstart.ipynb?token={token}")
        end = time.time() + timeout

        def wait_for(fn, what):
            while time.time() < end:
                try:
                    v = fn()
                    if v:
                        return v
                except Exception:  # the page is still building  # noqa: BLE001
                    pass
                time.sleep(0.5)
            raise TimeoutError(f"gave up waiting for {what}")

        wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), "cells")
        # The kernel must be idle before a cell runs (the status bar says so).
        wait_for(lambda: "Idle" in driver.find_element(By.CSS_SELECTOR, ".jp-StatusBar-Widget"
                                                       ).text or driver.execute_script(
            "return document.body.innerText.includes('Idle')"), "an idle kernel")
        cells = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")
        upto = next(i for i, c in enumerate(cells) if WIDGET_MARK in c.text)
        target = cells[upto]
        # The cells above first (the panel uses what they set: the machine, the photos), then
        # the panel's cell: each with Shift+Enter, as a person runs a notebook
        for cell in cells[:upto + 1]:
            driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", cell)
            cell.find_element(By.CSS_SELECTOR, ".jp-InputArea-editor .cm-content").click()
            ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT
                                                                                    ).perform()
        controls = wait_for(lambda: target.find_elements(
            By.CSS_SELECTOR, ".jp-OutputArea .widget-text input, .jp-OutputArea .widget-button"),
            "widget controls in the cell's output")
        time.sleep(1.0)  # let the layout settle before the picture
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", target)
        shot = out / "quickstart_widgets.png"
        driver.save_screenshot(str(shot))
        text = target.find_element(By.CSS_SELECTOR, ".jp-OutputArea").text
        result = {"ok": len(controls) >= 5 and "Loading widget" not in text
                  and "ConfigPanel object" not in text,
                  "controls": len(controls), "loading_text": "Loading widget" in text,
                  "output_text": text[:2000], "screenshot": str(shot)}
    except Exception as e:  # noqa: BLE001  (reported in result.json, exit code 1)
        result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        if driver is not None:
            driver.save_screenshot(str(out / "failure.png"))
    finally:
        if driver is not None:
            driver.quit()
        lab.terminate()
        try:
            lab.wait(10)
        except subprocess.TimeoutExpired:
            lab.kill()
        shutil.rmtree(work, ignore_errors=True)
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "browser-check"))
    args = p.parse_args()
    r = check(Path(args.out))
    print(json.dumps({k: v for k, v in r.items() if k != "output_text"}, indent=1))
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
