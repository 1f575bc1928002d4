# Keeper — run `make help` for the list of targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST := $(PY) -m pytest

.PHONY: help setup kafka-up kafka-down cluster-up cluster-down db-up db-down migrate topics up down status seed run \
        test test-unit test-integration test-e2e faults dead-letters reconcile soak soak-quick soak-failover bench bench-quick bench-payform bench-notifications screens-payform check fmt clean \
        observe observe-down

help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

setup: $(STAMP) ## Create the Python environment (pinned by constraints.txt)

kafka-up: $(STAMP) ## Fetch the broker jars (once) and start a single-node KRaft broker on :9092
	infra/kafka/kafka.sh up

kafka-down: ## Stop the local broker
	infra/kafka/kafka.sh down

cluster-up: $(STAMP) ## Start a three-broker KRaft cluster on loopback (ports 29092-29097)
	infra/kafka/cluster.sh up

cluster-down: ## Stop the three-broker cluster
	infra/kafka/cluster.sh down

db-up: ## Install PostgreSQL if missing and start the project's cluster on :5544
	infra/postgres/pg.sh up

db-down: ## Stop the project's PostgreSQL cluster
	infra/postgres/pg.sh down

migrate: $(STAMP) ## Apply database migrations (DATABASE_URL or the local cluster)
	$(PY) -m db.migrate upgrade

topics: $(STAMP) ## Create the pipeline's Kafka topics with their policies (idempotent)
	$(PY) -m stream_agents.topology

up: kafka-up db-up migrate topics ## Start every service in the background
	@infra/keeper.sh up

down: ## Stop every service
	@infra/prometheus/prometheus.sh down
	@infra/keeper.sh down
	@infra/kafka/kafka.sh down
	@infra/postgres/pg.sh down

status: ## Show which services are running
	@infra/keeper.sh status

seed: $(STAMP) ## Create the demo data (idempotent) and publish its configuration to the agents
	@infra/keeper.sh seed

run: up seed ## Start the whole system with demo data (broker, database, agents, projector, API)
	@infra/keeper.sh banner

observe: ## Install Debian's prometheus if missing and run it on loopback (:9090), scraping every process with the alert rules
	@infra/prometheus/prometheus.sh up

observe-down: ## Stop the project's Prometheus
	@infra/prometheus/prometheus.sh down

test: $(STAMP) ## Run every test tier (unit, integration, e2e) against real services
	$(PYTEST) tests

test-unit: $(STAMP) ## Run the unit tier (no I/O)
	$(PYTEST) tests/unit

test-integration: $(STAMP) ## Run the integration tier (real Kafka and PostgreSQL)
	$(PYTEST) tests/integration

test-e2e: $(STAMP) ## Run the end-to-end tier
	$(PYTEST) tests/e2e

faults: $(STAMP) ## Run the fault and concurrency suites at full size (see docs/reliability.md)
	KEEPER_FAULT_SCALE=full $(PYTEST) -m faults -s tests/integration

bench: $(STAMP) ## Capacity (full lives stepped up until they stop holding, 3 runs), CPU-ms per life per process, baselines (Kafka ProducerPerformance, raw aiokafka, HTTP only) → docs/benchmarks.md
	$(PY) -m bench.pipeline

bench-quick: $(STAMP) ## The same, one short search (under 3 minutes; a smoke test)
	$(PY) -m bench.pipeline --quick

soak: $(STAMP) ## Bounded state: 1M completed lives straight into order-commands; RSS, table entries, changelog bytes, serve-again time at 100k/500k/1M (hours; not CI) → bench/results/soak.json
	$(PY) -m bench.soak --static --checkpoints 100000,500000,1000000

soak-quick: $(STAMP) ## The same at 5k/15k/30k lives (about 25 minutes on a busy 2-core box)
	$(PY) -m bench.soak --static --checkpoints 5000,15000,30000

soak-failover: $(STAMP) ## Serve-again after SIGKILL: 5 kills with an immediate replacement, 2 without, static membership (ADR 0012; about 5 minutes) → bench/results/soak-failover.json
	$(PY) -m bench.soak --static --checkpoints 1000 --retention-s 20 --kills 5 --leave-kills 2 --out bench/results/soak-failover.json

bench-payform: $(STAMP) ## Payment form: decision → payer's screen latency (p50/p99) into docs/benchmarks.md
	$(PY) bench/payform_latency.py --runs 100

bench-notifications: $(STAMP) ## Bank notifications: share confirmed with no person, notification → approved p50/p99 into docs/benchmarks.md
	$(PY) bench/notification_latency.py --runs 40 --mismatch-every 4

screens-payform: $(STAMP) ## Regenerate the payment form screenshots (docs/screens/pay-*.png)
	$(PY) bench/payform_screens.py

dead-letters: $(STAMP) ## List the open dead letters (quarantined records); retry with ARGS="retry ID" after a fix
	$(PY) -m stream_agents.dead_letters $(or $(ARGS),list)

reconcile: $(STAMP) ## Check the invariants across the agents' tables, Kafka and PostgreSQL (non-zero exit on any mismatch)
	$(PY) -m stream_agents.reconcile

check: $(STAMP) ## Lint, format check and type check; never rewrites files
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy domain schemas db ingest_api stream_agents ops_console telemetry

fmt: $(STAMP) ## Format and auto-fix the code
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean: down ## Stop everything and delete local state (.local/)
	rm -rf .local
