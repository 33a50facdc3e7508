# Slipway developer entry points. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-unit lint format compile manifests-check clean

help: ## List every target with its one-line description
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "uv==0.13.8"
	# torch first, with pip: `pip install torch==2.13.0` finds the CPU build where one is provided; uv then keeps it.
	$(BIN)/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
	$(BIN)/uv pip install --python $(BIN)/python -q -c constraints.txt -e ".[dev,vision]"
	touch $(STAMP)

venv: $(STAMP) ## Create .venv and install Slipway with pinned dependencies (constraints.txt)

demo: $(STAMP) ## Run the churn loop end to end on embedded defaults (pipeline, registry, server, drift)
	$(BIN)/slipway demo

test: $(STAMP) ## Install everything and run the whole suite (CI=true turns missing services into failures)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## Run only the fast unit tests
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

lint: $(STAMP) ## ruff format check, ruff lint and mypy
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP) ## Apply ruff formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

compile: $(STAMP) ## Compile every pipeline to KFP IR YAML under build/pipelines and load it back
	$(BIN)/slipway compile --out build/pipelines

manifests-check: $(STAMP) ## Build the kustomize overlays and validate the rendered manifests offline
	$(BIN)/python -m pytest -m manifests tests/integration/test_manifests.py $(PYTEST_ARGS)

clean: ## Remove build outputs and local artifacts (keeps .venv)
	rm -rf build .slipway .pytest_cache .mypy_cache .ruff_cache
