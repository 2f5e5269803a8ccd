# Tasks of the loyalty engine. `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
PY := .venv/bin/python
export LOYALTY_LOG_FORMAT ?= console

.PHONY: setup asyncapi-parser axe-core ops-tools infra run test test-unit test-clocks lint typecheck schemas bench screenshots stop clean

setup:  ## Python environment from the lock file (installs uv when missing)
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	uv sync --frozen

# npm writes this file last: it is there, and newer than the lock file, once an install finished.
ASYNCAPI_PARSER := tools/asyncapi/node_modules/.package-lock.json

asyncapi-parser: $(ASYNCAPI_PARSER)  ## the official AsyncAPI parser (Node.js 20+), which the tests run on schemas/asyncapi/

$(ASYNCAPI_PARSER): tools/asyncapi/package.json tools/asyncapi/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "asyncapi-parser: Node.js 20+ and npm are needed" >&2; exit 1; }
	cd tools/asyncapi && npm ci
	touch $@

AXE_CORE := tools/axe/node_modules/.package-lock.json

axe-core: $(AXE_CORE)  ## axe-core (Node.js 20+), which the browser tests inject into pages to check accessibility

$(AXE_CORE): tools/axe/package.json tools/axe/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "axe-core: Node.js 20+ and npm are needed" >&2; exit 1; }
	cd tools/axe && npm ci
	touch $@

ops-tools:  ## promtool and docker compose, which the tests use to check deploy/; idempotent
	bash deploy/local/ops-tools.sh

infra:  ## Kafka and PostgreSQL on this machine (no Docker needed); idempotent
	bash deploy/local/postgres.sh start
	bash deploy/local/kafka.sh start

run: setup infra  ## every service (earn, tiering, notify, analytics) and a simulated shop; Ctrl-C stops everything
	.venv/bin/loyalty migrate
	.venv/bin/loyalty demo

test: setup asyncapi-parser axe-core ops-tools  ## the whole suite; infrastructure is found or started by the tests themselves
	.venv/bin/pytest

test-unit: setup asyncapi-parser
	.venv/bin/pytest tests/unit

test-clocks: setup asyncapi-parser axe-core ops-tools  ## the suite again at 05:00 and 22:30 in Ho Chi Minh City and a year ahead
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

# The demo's password comes from the output of `make run` saved (`make run | tee .local/run.log`,
# then RUN_LOG=.local/run.log) or from PASSWORD=<the printed one>; chromium from ops-tools.
screenshots: setup  ## docs/images/ of the console and the widget, from a running `make run`
	$(PY) -m tools.screenshots $(if $(RUN_LOG),--run-log $(RUN_LOG)) $(if $(PASSWORD),--password '$(PASSWORD)')

stop:  ## stop the local Kafka broker and PostgreSQL
	bash deploy/local/kafka.sh stop
	bash deploy/local/postgres.sh stop
