# The two commands of the README: `make demo` (the main job) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: demo test setup clean

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml scripts/setup_env.sh
	bash scripts/setup_env.sh $(VENV)

setup: $(VENV)/.installed

demo: $(VENV)/.installed
	$(PY) -m dreamkit demo --out demo-output --overwrite

test: $(VENV)/.installed
	$(PY) -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf demo-output .pytest_cache
