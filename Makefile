# prunekit developer tasks. Everything runs inside .venv, created from pinned constraints.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.prunekit-installed

# Lint only the source dirs that exist (benchmarks/ arrives later).
LINT_DIRS := $(wildcard prunekit tests benchmarks)

.PHONY: venv test lint typecheck unit demo format clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -c constraints.txt -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/ruff check $(LINT_DIRS)

typecheck: venv
	$(BIN)/mypy prunekit

unit: venv
	$(BIN)/pytest

test: lint typecheck unit

demo: venv
	$(BIN)/python -m prunekit.demo

format: venv
	$(BIN)/ruff format $(LINT_DIRS)
	$(BIN)/ruff check --fix $(LINT_DIRS)

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
