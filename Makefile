# sluiceway — `make help` lists every target.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WAREHOUSE ?= ./warehouse
DEMO_RECORDS ?= 200000
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-unit test-integration lint format bench-ingest clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/python -m pip install --quiet -e ".[local,aws,dev]"
	@touch $@

venv: $(STAMP) ## create .venv with the pinned dependencies (only when setup.cfg changed)

demo: $(STAMP) ## generate a sample landing file, ingest it into ./warehouse, query it
	$(BIN)/sluiceway demo --records $(DEMO_RECORDS) --warehouse $(WAREHOUSE)

test: $(STAMP) lint ## every test tier CI runs
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: $(STAMP) ## the fast tier: no Spark, no servers
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

test-integration: $(STAMP) ## real Spark, Iceberg, DuckDB and local servers
	$(BIN)/python -m pytest -m "integration or reliability" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff over code and notebooks
	$(BIN)/ruff check lib jobs tests notebooks bench
	$(BIN)/ruff format --check lib jobs tests notebooks bench

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix lib jobs tests notebooks bench
	$(BIN)/ruff format lib jobs tests notebooks bench

bench-ingest: $(STAMP) ## ~1 GB landing file: our ingest vs DuckDB vs PyArrow vs plain PySpark
	$(BIN)/python bench/bench_ingest.py

clean: ## remove the local warehouse, caches and build output (keeps .venv)
	rm -rf $(WAREHOUSE) spark-warehouse dist build .pytest_cache .ruff_cache
