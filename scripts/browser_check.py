"""Open the step-by-step notebook in JupyterLab in headless Chromium, run every cell as a
person does (Shift+Enter, top to bottom, with small values typed into its forms), and take a
screenshot of each stage's output.

    python scripts/browser_check.py [--out browser-check]
    python scripts/browser_check.py --view EXECUTED.ipynb [--out DIR]   # pictures as shown

Starts JupyterLab on 127.0.0.1 (a free port, a random token) with a copy of notebooks/ whose
form fields are set as Colab sets them (the `#@param` lines: 10 steps, two class images, one
sample grid: what a stage draws is checked, not how well; about 45 s on a CPU core), drives
Debian's chromium through chromedriver (selenium; no browser download), and writes
`<out>/NN_<stage>.png` for every code cell plus `<out>/result.json` (what was seen: each cell's
title, whether it finished, its pictures, any traceback, the caption editor's controls). Exit
code 0 when every cell ran without a traceback and the widgets rendered as controls.
tests/test_browser.py runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
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
NOTEBOOK = "02_step_by_step.ipynb"
FORMS = {"STEPS": 10, "NUM_CLASS_IMAGES": 2, "SAMPLE_EVERY": 10, "TRY_STEPS": 3, "COUNT": 1}
FIELD = re.compile(r"^(?P<name>[A-Z_]+) = (?P<value>.*?)  #@param(?P<rest>.*)$", re.M)


def _with_forms(src: Path, dest: Path, values: dict) -> None:
    """Copy a notebook with form fields changed as Colab changes them: the `#@param` line."""
    nb = json.loads(src.read_text())
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        text = FIELD.sub(lambda m: f"{m['name']} = {values[m['name']]!r}  #@param{m['rest']}"
                         if m["name"] in values else m[0], text)
        cell["source"] = text.splitlines(keepends=True)
    dest.write_text(json.dumps(nb, indent=1))


def _titles(notebook: Path) -> list[str]:
    """Each code cell's `#@title`, in order (`cell N` where there is none)."""
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    return [next((line[7:].strip() for line in "".join(c["source"]).splitlines()
                  if line.startswith("#@title")), f"cell {n}") for n, c in enumerate(cells)]


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
            time.sleep(0.2)
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


@contextlib.contextmanager
def _jupyterlab(work: Path, out: Path):
    """JupyterLab serving `work` on a free port with a random token, yielding the notebook
    URL's start; settings that keep pop-ups and half-drawn pages out of the screenshots."""
    # No "get notified about Jupyter news?" pop-up over the screenshots.
    news = work / ".lab-settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    # Every cell in the page from the start, not only those in view (JupyterLab's windowing):
    # what a user scrolls to must be there for the script too.
    tracker = work / ".lab-settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
           "JUPYTER_CONFIG_DIR": str(work / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(work / ".rt"),
           "JUPYTERLAB_SETTINGS_DIR": str(work / ".lab-settings")}
    lab = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser",
                            f"--port={port}", "--ServerApp.ip=127.0.0.1",
                            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}",
                            "--LabApp.news_url=", "--allow-root"],
                           stdout=open(out / "jupyterlab.log", "w"), stderr=subprocess.STDOUT,
                           env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/api?token={token}", 60)
        yield base, token
    finally:
        lab.terminate()
        try:
            lab.wait(10)
        except subprocess.TimeoutExpired:
            lab.kill()


def _wait_for(end: float, fn, what: str):
    while time.time() < end:
        try:
            v = fn()
            if v:
                return v
        except Exception:  # the page is still building  # noqa: BLE001
            pass
        time.sleep(0.1)  # a finished cell is seen within 0.1 s (the test waits on every cell)
    raise TimeoutError(f"gave up waiting for {what}")


def _settled(driver, cell, quiet: float = 0.3, most: float = 3.0) -> None:
    """Wait until the cell's output area has not changed for `quiet` seconds (widgets and
    pictures are drawn after the prompt shows the cell finished), at most `most` seconds."""
    end, last, since = time.time() + most, None, time.time()
    while time.time() < end:
        now = driver.execute_script(
            "const a = arguments[0].querySelector('.jp-OutputArea');"
            "return a ? a.textContent.length + ':' + a.querySelectorAll('*').length + ':' +"
            " Array.from(a.querySelectorAll('img')).filter(i => i.complete).length : '';", cell)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet:
            return
        time.sleep(0.05)


def check(out: Path, timeout: float = 420) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dreamkit-lab-"))
    (work / "notebooks").mkdir()
    _with_forms(ROOT / "notebooks" / NOTEBOOK, work / "notebooks" / NOTEBOOK, FORMS)
    result = {"ok": False}
    driver = None
    try:
        with _jupyterlab(work, out) as (base, token):
            driver = _browser()
            driver.get(f"{base}/lab/tree/notebooks/{NOTEBOOK}?token={token}")
            result = _run_cells(driver, work, time.time() + timeout, out)
    except Exception as e:  # noqa: BLE001  (reported in result.json, exit code 1)
        result = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        if driver is not None:
            driver.save_screenshot(str(out / "failure.png"))
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(work, ignore_errors=True)
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def _run_cells(driver, work: Path, end: float, out: Path) -> dict:
    """Shift+Enter on every code cell, top to bottom; a screenshot and what was seen of each."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def wait_for(fn, what):
        return _wait_for(end, fn, what)

    # Titles from the notebook file: what the page shows of a cell's first line depends on
    # scrolling and on how far JupyterLab has rendered it.
    titles = _titles(work / "notebooks" / NOTEBOOK)
    wait_for(lambda: len(driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell"))
             == len(titles), f"the notebook's {len(titles)} code cells in the page")
    # The kernel must be idle before a cell runs (the status bar says so).
    wait_for(lambda: driver.execute_script(
        "return document.body.innerText.includes('Idle')"), "an idle kernel")
    cells = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell")
    seen = []
    for n, cell in enumerate(cells):
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", cell)
        cell.find_element(By.CSS_SELECTOR, ".jp-InputArea-editor .cm-content").click()
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT
                                                                                ).perform()
        # finished: its prompt shows a number instead of [*]
        wait_for(lambda c=cell: re.search(r"\[\d+\]", c.find_element(
            By.CSS_SELECTOR, ".jp-InputPrompt").text), f"cell {n} to finish")
        _settled(driver, cell)  # the last outputs and widgets drawn
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", cell)
        title = titles[n]
        shot = out / f"{n:02d}_{re.sub(r'[^a-z0-9]+', '_', title.lower()).strip('_')}.png"
        cell.screenshot(str(shot))
        area = cell.find_elements(By.CSS_SELECTOR, ".jp-OutputArea")
        text = driver.execute_script("return arguments[0].textContent", area[0]) \
            if area else ""
        seen.append({"title": title, "screenshot": str(shot),
                     "images": len(cell.find_elements(By.CSS_SELECTOR,
                                                      ".jp-OutputArea img")),
                     "controls": len(cell.find_elements(
                         By.CSS_SELECTOR, ".widget-text input, .widget-button")),
                     "traceback": "Traceback" in text,
                     "loading_widget": "Loading widget" in text, "text": text[-600:]})
    bad = [s["title"] for s in seen if s["traceback"] or s["loading_widget"]]
    captions = next((s for s in seen if "Captions" in s["title"]), {"controls": 0})
    return {"ok": not bad and captions["controls"] >= 5, "cells": seen, "bad": bad,
            "caption_controls": captions["controls"]}


def view(notebook: Path, out: Path, min_width: int = 400, timeout: float = 120) -> list:
    """Open an executed notebook in JupyterLab (nothing runs) and screenshot each output
    picture at least `min_width` px wide as the page shows it: `<out>/picture_NN.png`."""
    from selenium.webdriver.common.by import By

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dreamkit-lab-"))
    shutil.copy(notebook, work / notebook.name)
    driver, shots = None, []
    try:
        with _jupyterlab(work, out) as (base, token):
            driver = _browser()
            driver.set_window_size(1400, 3000)  # a tall picture whole in one screenshot
            driver.get(f"{base}/lab/tree/{notebook.name}?token={token}")
            end = time.time() + timeout
            _wait_for(end, lambda: driver.find_elements(By.CSS_SELECTOR,
                                                        ".jp-OutputArea img"), "pictures")
            time.sleep(2)  # every picture decoded
            for img in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea img"):
                if img.size["width"] >= min_width:
                    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", img)
                    shot = out / f"picture_{len(shots):02d}.png"
                    img.screenshot(str(shot))
                    shots.append({"screenshot": str(shot), "shown_size": img.size})
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(work, ignore_errors=True)
    return shots


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(ROOT / "browser-check"))
    p.add_argument("--view", type=Path, help="an executed notebook: open it (nothing runs) and "
                   "screenshot its pictures as the page shows them")
    args = p.parse_args()
    if args.view:
        for shot in view(args.view, Path(args.out)):
            print(f"{shot['screenshot']}: shown {shot['shown_size']['width']} x "
                  f"{shot['shown_size']['height']} px")
        return 0
    r = check(Path(args.out))
    print(json.dumps({k: v for k, v in r.items() if k != "cells"}, indent=1))
    for c in r.get("cells", []):
        print(f"{c['title']}: {c['images']} picture(s), {c['controls']} control(s)"
              f"{', TRACEBACK' if c['traceback'] else ''} -> {c['screenshot']}")
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
