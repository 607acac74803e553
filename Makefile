# prunekit developer tasks. Everything runs inside .venv, created from pinned constraints.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.prunekit-installed

# Lint only the source dirs that exist (benchmarks/ arrives later).
LINT_DIRS := $(wildcard prunekit tests benchmarks)

.PHONY: venv test lint typecheck unit demo bench format clean

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

# Not part of `test`: prunekit vs Torch-Pruning wall time on ResNet-50 / ViT-B (minutes).
# Options pass through, e.g. make bench BENCH_ARGS="--repeats 3 --models resnet50".
bench: venv
	$(BIN)/python benchmarks/engine_overhead.py $(BENCH_ARGS)

format: venv
	$(BIN)/ruff format $(LINT_DIRS)
	$(BIN)/ruff check --fix $(LINT_DIRS)

clean:
	rm -rf $(VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
