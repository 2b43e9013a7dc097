# Every target sets up its own virtual environment from nothing (python3 -m venv + pip install -e).
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

.PHONY: setup demo test test-fast bench
setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/spectheory compare --out compare.png

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 -m "not slow"

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run.py
