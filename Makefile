# Tasks of the loyalty engine. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
PY := .venv/bin/python
export LOYALTY_LOG_FORMAT ?= console

.PHONY: setup ops-tools infra run test test-unit test-clocks lint typecheck schemas bench stop clean

setup:  ## Python environment from the lock file (installs uv when missing)
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	uv sync --frozen

ops-tools:  ## promtool and docker compose, which the tests use to check deploy/; idempotent
	bash deploy/local/ops-tools.sh

infra:  ## Kafka and PostgreSQL on this machine (no Docker needed); idempotent
	bash deploy/local/postgres.sh start
	bash deploy/local/kafka.sh start

run: setup infra  ## every service (earn, tiering, notify, analytics) and a simulated shop; Ctrl-C stops everything
	.venv/bin/loyalty migrate
	.venv/bin/loyalty demo

test: setup ops-tools  ## the whole suite; infrastructure is found or started by the tests themselves
	.venv/bin/pytest

test-unit: setup
	.venv/bin/pytest tests/unit

test-clocks: setup ops-tools  ## the suite again at 05:00 and 22:30 in Ho Chi Minh City and a year ahead
	bash tests/shifted_clocks.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

typecheck:
	.venv/bin/mypy

schemas:  ## regenerate the committed JSON Schemas of the events
	$(PY) -m shared.events.schemas

bench: setup infra  ## benchmarks (not tests): print figures, write bench/results/latest.json
	$(PY) -m bench.earn

stop:  ## stop the local Kafka broker and PostgreSQL
	bash deploy/local/kafka.sh stop
	bash deploy/local/postgres.sh stop
