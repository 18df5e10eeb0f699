# sluiceway — `make help` lists every target.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WAREHOUSE ?= ./warehouse
DEMO_RECORDS ?= 200000
PYTEST_ARGS ?=
BENCH_RECORDS ?= 1000000
BENCH_DAY_RECORDS ?= 30000000
BENCH_DAY_HISTORY ?= 1

.DEFAULT_GOAL := help
.PHONY: help venv jars demo test test-unit test-integration lint format bench-ingest bench-process bench-day bench-stream bench-startup clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel setuptools
	$(BIN)/python -m pip install --quiet -e ".[local,aws,dev]"
	@touch $@

venv: $(STAMP) jars ## create .venv with the pinned dependencies (only when setup.cfg changed) and the jars

# Iceberg's Spark runtime and AWS bundle, pinned with their SHA-256 in
# lib/sluiceway/data/runtime-jars.lock: downloaded into .venv/share/sluiceway/jars only when
# missing or damaged, so this re-checks in a second and needs the network only the first time.
jars: $(STAMP) ## fetch the pinned Iceberg jars from Maven Central (once) and check their SHA-256
	$(BIN)/sluiceway jars

demo: jars ## generate a sample landing file, ingest it into ./warehouse, query it
	$(BIN)/sluiceway demo --records $(DEMO_RECORDS) --warehouse $(WAREHOUSE)

test: jars trino kafka lint lint-infra ## every test tier CI runs
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: jars ## the fast tier: no Spark, no servers
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

test-integration: jars ## real Spark, Iceberg, DuckDB and local servers
	$(BIN)/python -m pytest -m "integration or reliability" $(PYTEST_ARGS)

# The production stack offline (docs/adr/0009-local-aws-stack.md): SeaweedFS for S3, moto for
# Glue, DynamoDB and the other AWS APIs, on 127.0.0.1. `make stack` prints the variables to
# export; with them the commands run the local-aws profile. S3_PORT / AWS_PORT pin the ports.
.PHONY: stack test-aws-stack
stack: jars kafka ## the production stack on 127.0.0.1 until Ctrl-C: S3 (SeaweedFS), Glue + DynamoDB (moto), Kafka
	$(BIN)/python -m sluiceway.local_stack $(if $(S3_PORT),--s3-port $(S3_PORT)) $(if $(AWS_PORT),--aws-port $(AWS_PORT)) $(if $(KAFKA_PORT),--kafka-port $(KAFKA_PORT))

test-aws-stack: jars ## GlueCatalog + S3FileIO + DynamoDB lease on the local stack, with real Spark jobs
	$(BIN)/python -m pytest -m aws_stack $(PYTEST_ARGS)

# Trino, Athena's engine (docs/adr/0010-trino-in-ci.md): the server core and the Iceberg plugin
# pinned in lib/sluiceway/data/trino-server.lock, fetched with mvn into ~/.m2 once and unpacked
# into .venv/share/sluiceway/trino. It runs on Java 24+ (found under /usr/lib/jvm), Spark on 17.
.PHONY: trino test-trino
trino: $(STAMP) ## fetch the pinned Trino with Maven (once), check its SHA-256, unpack it into .venv
	$(BIN)/python -m sluiceway.trino_server

test-trino: jars trino ## every analyst SQL text on Trino over the local stack's tables, vs DuckDB
	$(BIN)/python -m pytest -m trino $(PYTEST_ARGS)

# A Kafka broker for the stream tests and `make stack` (docs/adr/0011-kafka-broker-in-tests.md):
# every jar of kafka_2.13's runtime class path pinned with its SHA-256 in
# lib/sluiceway/data/kafka-server.lock, fetched with one mvn run and installed into
# .venv/share/sluiceway/kafka; a complete install is not fetched again. It runs on Java 17.
.PHONY: kafka test-kafka
kafka: $(STAMP) ## fetch the pinned Kafka broker jars with Maven (once), check their SHA-256, install into .venv
	$(BIN)/python -m sluiceway.kafka_server --install-only

test-kafka: jars kafka ## the test broker: produce, consume, restart, Spark's Kafka source
	$(BIN)/python -m pytest -m kafka $(PYTEST_ARGS)

lint: $(STAMP) ## ruff over code and notebooks, mypy (strict) over lib/
	$(BIN)/ruff check lib jobs tests notebooks bench
	$(BIN)/ruff format --check lib jobs tests notebooks bench
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix lib jobs tests notebooks bench
	$(BIN)/ruff format lib jobs tests notebooks bench

bench-ingest: jars ## ~1 GB landing file: our ingest vs DuckDB vs PyArrow vs plain PySpark
	$(BIN)/python bench/bench_ingest.py

bench-process: jars ## financial handler: engine vs row-by-row rdd vs native Spark (BENCH_RECORDS=1000000)
	$(BIN)/python bench/bench_process.py --records $(BENCH_RECORDS)

bench-day: jars ## a whole day (BENCH_DAY_RECORDS=30000000) ingested + processed as processes, vs DuckDB; BENCH_DAY_HISTORY=3 for day 3 / day 1
	$(BIN)/python bench/bench_day.py --records $(BENCH_DAY_RECORDS) --history $(BENCH_DAY_HISTORY)

bench-stream: jars kafka ## `sluiceway stream` from the test broker: sustained rec/s, produce->visible latency at 10k/s, vs the file ingest
	$(BIN)/python bench/bench_stream.py

bench-startup: jars ## a local Spark start to its first Iceberg query, with vs without the class archive
	$(BIN)/python bench/spark_start.py --runs 7

.PHONY: submit
submit: jars ## run a job with spark-submit and the Iceberg runtime: make submit JOB=ingest_landing ARGS="--source F"
	@test -n "$(JOB)" || { echo "make submit needs JOB=ingest_landing|process_records|maintain_tables [ARGS=...]"; exit 2; }
	$(BIN)/sluiceway submit $(JOB) -- $(ARGS)

# ---------------------------------------------------------------- AWS (infra/)
TOOLS := .tools
LINT_VENV := $(TOOLS)/lint
RENDERED := build/infra
TEMPLATES := $(wildcard infra/cloudformation/*.yaml)
VERSION := $(shell sed -n 's/^version = //p' setup.cfg)
ENV ?= dev
ENGINE ?= glue
IMAGE_TAG ?= $(VERSION)
STACK_PREFIX ?= sluiceway-$(ENV)
ALERT_EMAIL ?=
EMR_RELEASE ?= emr-7.9.0
DOCKERFILES := infra/Dockerfile infra/emr-serverless/Dockerfile
.PHONY: lint-tools lint-infra package deploy image-build image

$(LINT_VENV)/.installed: infra/requirements-lint.txt
	@test -x $(LINT_VENV)/bin/python || $(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/python -m pip install --quiet --requirement infra/requirements-lint.txt
	@touch $@

$(TOOLS)/node_modules/.installed: infra/package.json infra/package-lock.json
	@mkdir -p $(TOOLS)
	cp infra/package.json infra/package-lock.json $(TOOLS)/
	npm ci --prefix $(TOOLS) --no-audit --no-fund --loglevel=error
	@touch $@

lint-tools: $(LINT_VENV)/.installed $(TOOLS)/node_modules/.installed ## install checkov, hadolint and asl-validator into .tools/ (pinned in infra/)

lint-infra: $(STAMP) lint-tools ## cfn-lint, checkov, asl-validator and hadolint over infra/
	$(BIN)/sluiceway statemachine render --output-dir $(RENDERED) $(TEMPLATES)
	$(BIN)/cfn-lint $(patsubst infra/cloudformation/%,$(RENDERED)/%,$(TEMPLATES))
	$(LINT_VENV)/bin/checkov --skip-download --quiet --compact --framework cloudformation dockerfile \
		$(addprefix -f ,$(patsubst infra/cloudformation/%,$(RENDERED)/%,$(TEMPLATES))) $(addprefix -f ,$(DOCKERFILES))
	$(TOOLS)/node_modules/.bin/asl-validator $(addprefix --json-path ,$(wildcard infra/statemachine/*.asl.json))
	$(LINT_VENV)/bin/hadolint $(DOCKERFILES)

package: $(STAMP) ## wheel (also what both images and the late-file Lambda run), job scripts and rendered templates into dist/
	rm -rf dist/jobs dist/cloudformation dist/lambda dist/sluiceway-*.whl
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .
	mkdir -p dist/jobs && cp jobs/*.py dist/jobs/
	mkdir -p dist/lambda && cp dist/sluiceway-$(VERSION)-py3-none-any.whl dist/lambda/sluiceway-$(VERSION).zip
	$(BIN)/sluiceway statemachine render --output-dir dist/cloudformation infra/cloudformation/*.yaml

deploy: package ## deploy both stacks: make deploy ENV=dev VPC_ID=vpc-.. SUBNET_IDS=subnet-a,subnet-b [ENGINE=emr-serverless] [TABLES_EXIST=true] (AWS credentials)
	@test -n "$(VPC_ID)" -a -n "$(SUBNET_IDS)" || { echo "make deploy needs VPC_ID=vpc-... SUBNET_IDS=subnet-...,subnet-... (see README: Deploying to AWS)"; exit 2; }
	aws cloudformation deploy --stack-name $(STACK_PREFIX)-storage \
		--template-file dist/cloudformation/storage.yaml --no-fail-on-empty-changeset \
		--capabilities CAPABILITY_IAM \
		--parameter-overrides EnvironmentName=$(ENV) AlertEmail=$(ALERT_EMAIL) \
		$(if $(TABLES_EXIST),TablesExist=$(TABLES_EXIST))
	set -euo pipefail; \
	artifacts=$$(aws cloudformation describe-stacks --stack-name $(STACK_PREFIX)-storage \
		--query "Stacks[0].Outputs[?OutputKey=='ArtifactsBucket'].OutputValue" --output text); \
	aws s3 sync dist/ "s3://$$artifacts/releases/$(VERSION)/" --exclude 'cloudformation/*'; \
	aws cloudformation deploy --stack-name $(STACK_PREFIX)-pipeline \
		--template-file dist/cloudformation/pipeline.yaml --no-fail-on-empty-changeset \
		--s3-bucket "$$artifacts" --s3-prefix templates --capabilities CAPABILITY_IAM \
		--parameter-overrides EnvironmentName=$(ENV) StorageStackName=$(STACK_PREFIX)-storage \
		Engine=$(ENGINE) PackageVersion=$(VERSION) ImageTag=$(IMAGE_TAG) EmrReleaseLabel=$(EMR_RELEASE) \
		VpcId=$(VPC_ID) SubnetIds=$(SUBNET_IDS)

image-build: package ## build both images locally with Docker: sluiceway-batch and sluiceway-emr-serverless (EMR_RELEASE=emr-7.9.0)
	docker build --file infra/Dockerfile --tag sluiceway-batch:$(IMAGE_TAG) .
	docker build --file infra/emr-serverless/Dockerfile --build-arg EMR_RELEASE=$(EMR_RELEASE) \
		--tag sluiceway-emr-serverless:$(IMAGE_TAG) .

image: image-build ## push both images to the pipeline stack's ECR repositories (Docker + AWS credentials)
	set -euo pipefail; \
	output() { aws cloudformation describe-stacks --stack-name $(STACK_PREFIX)-pipeline \
		--query "Stacks[0].Outputs[?OutputKey=='$$1'].OutputValue" --output text; }; \
	batch=$$(output ImageRepositoryUri); emr=$$(output EmrImageRepositoryUri); \
	aws ecr get-login-password | docker login --username AWS --password-stdin "$${batch%%/*}"; \
	docker tag sluiceway-batch:$(IMAGE_TAG) "$$batch:$(IMAGE_TAG)"; \
	docker tag sluiceway-emr-serverless:$(IMAGE_TAG) "$$emr:$(IMAGE_TAG)"; \
	docker push "$$batch:$(IMAGE_TAG)"; \
	docker push "$$emr:$(IMAGE_TAG)"

clean: ## remove the local warehouse, caches and build output (keeps .venv)
	rm -rf $(WAREHOUSE) spark-warehouse dist build .pytest_cache .ruff_cache .mypy_cache
