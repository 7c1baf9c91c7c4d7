# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU wheel of this exact release is what pip finds first; an unpinned torch pulls CUDA.
TORCH  := torch==2.13.0
PYTEST_ARGS ?= -n 2

.PHONY: demo test lint format benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install --quiet -e '.[vision]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install --quiet -e '.[dev,vision]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/loopml demo

test: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

benchmark: $(VENV)/.installed-dev
	$(BIN)/pytest benchmarks --benchmark-only -p no:cacheprovider

clean:
	rm -rf $(VENV) .loopml .pytest_cache .mypy_cache .ruff_cache
