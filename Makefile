# Two entry points (see README): `make demo` and `make test`.
# Each creates .venv on first use and installs exactly what it needs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: demo test lint typecheck unit bench protocol clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# Re-install whenever the dependencies or the installed kernelspec change.
$(VENV)/.installed-test: pyproject.toml extension/kernels/codex-python3/kernel.json | $(BIN)/python
	$(PIP) install -e '.[test,dev,browser]'
	touch $@

$(VENV)/.installed-demo: pyproject.toml extension/kernels/codex-python3/kernel.json | $(BIN)/python
	$(PIP) install -e '.[demo]'
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

protocol: $(VENV)/.installed-test
	$(BIN)/python scripts/generate_protocol.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
