# All set-up happens here: `make demo` and `make test` work on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo demo-supervised test test-slow lint bench install docs clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# CPU torch first (a bare `torch` requirement would pull a multi-GB CUDA build);
# a GPU user who already has torch in the venv keeps theirs.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -e ".[docs]"
	touch $(DOCS_STAMP)

# The documentation site into site/, warnings as errors (what CI builds).
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

demo-supervised: $(STAMP)
	$(BIN)/python scripts/demo_supervised.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The learning runs of the shipped agents (pytest -m slow): minutes each.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python scripts/bench_layers.py

clean:
	rm -rf $(VENV) lightning_logs runs site
