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

test: $(STAMP) .venv-checkov/.installed ## Install everything and run the whole suite (CI=true turns missing services into failures)
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

manifests-check: $(STAMP) .venv-checkov/.installed ## Build the overlays; validate manifests, images, IaC and CI offline
	$(BIN)/python -m pytest -m manifests tests/integration/test_manifests.py tests/integration/test_cluster_*.py $(PYTEST_ARGS)

clean: ## Remove build outputs and local artifacts (keeps .venv)
	rm -rf build .slipway .pytest_cache .mypy_cache .ruff_cache

# --- Cluster form -------------------------------------------------------------------------------------------------
.PHONY: checkov-venv hadolint kind-up kind-smoke

.venv-checkov/.installed: constraints-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install -q --disable-pip-version-check -c constraints-checkov.txt checkov
	touch $@

checkov-venv: .venv-checkov/.installed ## Create .venv-checkov with checkov pinned by constraints-checkov.txt

hadolint: $(STAMP) ## Lint every Dockerfile under docker/ with hadolint (offline)
	$(BIN)/hadolint docker/*.Dockerfile

kind-up: ## Create the kind cluster, install cert-manager, KServe, KFP and Strimzi, apply the kind overlay
	scripts/kind-up.sh

kind-smoke: $(STAMP) ## On the kind cluster: upload and run the pipeline, wait for churn, send one prediction
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/kind-smoke.sh

# --- Vision -------------------------------------------------------------------------------------------------------
.PHONY: bench-vision

bench-vision: $(STAMP) ## Vision: fine-tune vs scratch vs linear probe accuracy, train/inference images/s (224 px)
	$(BIN)/python benchmarks/bench_vision.py --threads 2 --out build/bench_vision.json

# --- Streaming ----------------------------------------------------------------------------------------------------
.PHONY: broker bench-stream

BROKER_PORT ?= 9092

broker: $(STAMP) ## Streaming: run a local Kafka-API broker (tansu, memory only) on 127.0.0.1:9092 (BROKER_PORT=...)
	$(BIN)/slipway stream broker --port $(BROKER_PORT)

bench-stream: $(STAMP) ## Streaming: processor events/s vs raw confluent-kafka, alert latency at 5k events/s, NAB score
	$(BIN)/python benchmarks/bench_stream.py --events 400000 --latency-seconds 20
	$(BIN)/python benchmarks/nab_score.py

# --- Progressive delivery and recommendations ---------------------------------------------------------------------
.PHONY: bench-recommender

bench-recommender: $(STAMP) ## Recommender: nDCG/precision/recall@10 vs popularity, KServe p99 for K=10 (direct, via router)
	$(BIN)/python benchmarks/bench_recommender.py --users 5000 --items 2000 --requests 2000

# --- Ingestion ------------------------------------------------------------------------------------------------------
.PHONY: bench-ingest test-ingestion

bench-ingest: $(STAMP) ## Ingestion: ingest+validate+cleanse rows/s vs raw pyarrow read_csv on a 1M x 20 CSV, peak RSS
	$(BIN)/python benchmarks/bench_ingest.py --rows 1000000 --repeats 3

test-ingestion: $(STAMP) ## Ingestion: corpus, quality, connectors (PostgreSQL, moto S3, HTTP API, tansu) and pipeline tests
	$(BIN)/python -m pytest tests/unit/test_ingest.py tests/unit/test_ingestion_*.py tests/integration/test_ingestion_*.py $(PYTEST_ARGS)

# --- Monitoring, drift and retraining -------------------------------------------------------------------------------
.PHONY: monitor-drift bench-drift test-monitoring

monitor-drift: $(STAMP) ## Monitoring: drift check of the last hour of churn traffic (alert, metrics, retrain on drift)
	$(BIN)/slipway monitor drift --model churn --window 1h

bench-drift: $(STAMP) ## Monitoring: profile-based drift check vs plain Evidently on 1M x 100 (both in one run)
	$(BIN)/python benchmarks/bench_drift.py --rows 1000000 --cols 100 --out build/bench_drift.json

test-monitoring: $(STAMP) ## Monitoring: drift, payload logs, alerts, metrics, CLI, pipeline and the closed-loop test
	$(BIN)/python -m pytest tests/unit/test_drift*.py tests/unit/test_monitoring_*.py tests/integration/test_monitoring_*.py tests/integration/test_closed_loop.py $(PYTEST_ARGS)

# --- Serving --------------------------------------------------------------------------------------------------------
.PHONY: mlserver-venv bench-serving test-serving

mlserver-venv: ## Serving: create benchmarks/mlserver/.venv (MLServer 1.7.1 sklearn runtime, benchmark peer only)
	benchmarks/mlserver/setup.sh

bench-serving: $(STAMP) ## Serving: predictor vs naive KServe, MLServer and a bare ASGI endpoint (1/32 rows, c=1/8/16)
	$(BIN)/python benchmarks/bench_serving.py --duration 4 --rounds 3 --out build/bench_serving.json

test-serving: $(STAMP) ## Serving: fast paths, payload logs, clients, enrichment, bad input, metrics, hot reload
	$(BIN)/python -m pytest tests/unit/test_serving_*.py tests/unit/test_payload_log.py tests/integration/test_serving*.py $(PYTEST_ARGS)

# --- Model building -------------------------------------------------------------------------------------------------
.PHONY: bench-training test-training

bench-training: $(STAMP) ## Training: fit time per algorithm; 4-model repeated 5-fold CV, sequential vs 2 processes
	$(BIN)/python benchmarks/bench_training.py --out build/bench_training.json

test-training: $(STAMP) ## Training: models, CV, tuning, champion/challenger, reports, housing, real-data bars, pipelines
	$(BIN)/python -m pytest tests/unit/test_training*.py tests/unit/test_evaluation_report.py tests/unit/test_housing.py tests/integration/test_churn_quality.py tests/integration/test_housing_quality.py tests/component/test_churn_pipeline.py tests/component/test_housing_pipeline.py $(PYTEST_ARGS)
