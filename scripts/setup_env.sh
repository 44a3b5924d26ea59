#!/usr/bin/env bash
# Create the virtual environment that `make demo` and `make test` use, once.
# CPU machines get a CPU build of torch first: a bare `torch` requirement would otherwise pull a
# multi-GB CUDA build. Machines with an NVIDIA GPU get the default (CUDA) build.
set -euo pipefail
VENV=${1:-.venv}
PY=${PYTHON:-python3}
if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV"
  "$PY" -m venv "$VENV"
fi
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@"; }
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "installing torch (CUDA build)"; pip_install torch
  else
    echo "installing torch (CPU build)"; pip_install "torch==2.13.0" || pip_install torch
  fi
fi
# The browser check needs Debian's chromium and its driver (no browser download).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver (Debian packages)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "note: install chromium and chromium-driver for tests/test_browser.py (apt-get, as root)"
  fi
fi
echo "installing dreamkit and its test tools"
pip_install -r requirements-dev.txt -c constraints.txt
pip_install --no-deps -e .
# Colab ships ipywidgets 7.7: a second copy of it, beside the venv's 8.x, for the tests that run
# the widget code under both majors (tests/test_notebook_forms.py puts it first on a kernel's path)
pip_install --no-deps --target "$VENV/ipywidgets7" "ipywidgets==7.7.5" "ipython_genutils==0.2.0"
# The older stack some users still run (diffusers 0.32, transformers 4.54, peft 0.14), beside the
# venv with the venv's torch, for tests/test_export_advice.py: exports must load there exactly
pip_install --no-deps --target "$VENV/oldstack" "diffusers==0.32.2" "transformers==4.54.0" \
  "peft==0.14.0" "tokenizers==0.21.4" "huggingface_hub==0.34.4" \
  || echo "note: the older stack did not install; tests/test_export_advice.py skips its check"
touch "$VENV/.installed"
echo "environment ready: $VENV"
