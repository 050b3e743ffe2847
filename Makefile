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

.PHONY: install demo test lint typecheck unit bench browser
install: $(STAMP)

demo: $(STAMP)
	$(PY) examples/digits_search.py

lint: $(STAMP)
	$(VENV)/bin/ruff check archsmith tests examples benchmarks
	$(VENV)/bin/ruff format --check archsmith tests examples benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The dashboard's browser tests drive Debian's headless Chromium: installed here when
# missing and allowed (CI runs as root); elsewhere those tests skip and say why.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; } ; } || \
	echo "chromium not installed: the dashboard's browser tests will skip"

unit: $(STAMP) browser
	$(PY) -m pytest -n 2 -q

test: lint typecheck unit

bench: $(STAMP)
	$(PY) benchmarks/space_bench.py

# The oldest Lightning in pyproject's range (lightning>=2.4,<3), tested in a venv of
# its own: the newest is what .venv resolves to.
LIGHTNING_OLDEST := 2.4.0
OLDEST_VENV := .venv-lightning-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.installed-$(LIGHTNING_OLDEST)
$(OLDEST_STAMP): pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	echo '*' > $(OLDEST_VENV)/.gitignore
	$(OLDEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install -q "torch==2.13.0"
	$(OLDEST_VENV)/bin/python -m pip install -q -e ".[test]" "lightning==$(LIGHTNING_OLDEST)"
	touch $@
.PHONY: test-lightning-oldest
test-lightning-oldest: $(OLDEST_STAMP)
	$(OLDEST_VENV)/bin/python -c "import lightning; assert lightning.__version__ == '$(LIGHTNING_OLDEST)', lightning.__version__"
	$(OLDEST_VENV)/bin/python -m pytest -q -n 2 -p no:cacheprovider tests/evaluator/test_lightning.py
test: test-lightning-oldest
