# deepnotes — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision are installed first as a matched pair (torchvision's compiled ops must
# come from the same torch build); override TORCH_SPEC for another platform or CUDA build.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
LAB_OUT ?= lab-report
BENCH_OUT ?= bench-out

.PHONY: run test lint bench lab-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.torch: $(BIN)/python
	$(BIN)/pip install -q $(TORCH_SPEC)
	touch $@

$(VENV)/.run: $(VENV)/.torch pyproject.toml
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.torch pyproject.toml
	$(BIN)/pip install -q -e ".[dev]"
	touch $@ $(VENV)/.run

run: $(VENV)/.run
	$(BIN)/deepnotes lab --out $(LAB_OUT)
	@echo "report: $(abspath $(LAB_OUT))/report.html"

test: $(VENV)/.dev
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests

lab-quick: $(VENV)/.run
	$(BIN)/deepnotes lab --quick --out $(LAB_OUT)

bench: $(VENV)/.dev
	$(BIN)/deepnotes bench --out $(BENCH_OUT)

clean:
	rm -rf $(VENV) $(LAB_OUT) $(BENCH_OUT) .pytest_cache .ruff_cache
