# Two entry points: `make demo` (the main job) and `make test` (the whole suite).
# Each creates .venv and installs what it needs. torch is pinned first so pip
# takes the CPU build on this machine's disk instead of downloading a CUDA one.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

.PHONY: install demo test lint typecheck unit bench
install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo_space.py

lint: $(STAMP)
	$(VENV)/bin/ruff check archsmith tests examples benchmarks
	$(VENV)/bin/ruff format --check archsmith tests examples benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -n 2 -q

test: lint typecheck unit

bench: $(STAMP)
	$(PY) benchmarks/space_bench.py
