# Two entry points (see README): `make demo` and `make test`.
# Each creates .venv on first use and installs exactly what it needs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: demo test lint typecheck unit bench protocol clean chromium labextension

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# What the wheel installs under share/jupyter: the kernelspec and the prebuilt labextension.
# An editable install copies them (hatch shared-data), so re-install whenever they change.
SHARED_DATA := extension/kernels/codex-python3/kernel.json extension/labextension/install.json \
	$(shell find extension/labextensions -type f)

$(VENV)/.installed-test: pyproject.toml $(SHARED_DATA) | $(BIN)/python
	$(PIP) install -e '.[test,dev,browser]'
	@$(BIN)/jupyter labextension list 2>&1 | grep -q 'codex-notebook.*enabled.*OK' || { \
	  echo "the codex-notebook labextension is not enabled: see $(BIN)/jupyter labextension list"; exit 1; }
	touch $@

$(VENV)/.installed-demo: pyproject.toml $(SHARED_DATA) | $(BIN)/python
	$(PIP) install -e '.[demo]'
	@$(BIN)/jupyter labextension list 2>&1 | grep -q 'codex-notebook.*enabled.*OK' || { \
	  echo "the codex-notebook labextension is not enabled: see $(BIN)/jupyter labextension list"; exit 1; }
	touch $@

# JupyterLab on a git-ignored working copy (demo-notebooks/), so the tracked notebooks stay
# untouched; prints the URL of quickstart.ipynb. Options: DEMO_ARGS="--port 9999 --no-browser".
demo: $(VENV)/.installed-demo
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

test: $(VENV)/.installed-test chromium lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian's Chromium for the browser tests (playwright cannot download browsers here).
# Without root/apt the browser tests report themselves skipped, with the reason;
# CODEX_NOTEBOOK_SKIP_BROWSER=1 skips them and installs nothing.
chromium:
	@case "$${CODEX_NOTEBOOK_SKIP_BROWSER:-}" in ""|0|false) ;; *) exit 0;; esac; \
	command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is not installed: the browser tests will be skipped"; fi; }

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/ruff format --check src tests scripts bench

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

unit: $(VENV)/.installed-test
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: $(VENV)/.installed-test
	$(PIP) install -e '.[bench]'
	$(BIN)/python bench/run_all.py

# Rebuild the prebuilt frontend extension from extension/labextension/ (needs node and npm).
labextension:
	$(PYTHON) scripts/build_labextension.py

protocol: $(VENV)/.installed-test
	$(BIN)/python scripts/generate_protocol.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
