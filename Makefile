# Flex Bridge: every command a developer or CI needs. Only Python 3.11+ is assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run doctor test unit lint typecheck check install clean bench mcp-host

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the service (sandbox mode when no Twilio credentials are set).
run: $(STAMP)
	$(BIN)/python main.py serve

## Check the settings, the Twilio credentials and a running bridge (see docs/deploy.md).
doctor: $(STAMP)
	$(BIN)/python main.py doctor

## The whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest

## The core's unit tier alone (a fake Twilio client, a real SQLite file): seconds.
unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

## Benchmarks (emulator and bridge as separate processes); see BENCHMARKS.md. Writes
## bench/results/latest.json and docs/latency.png; `bench/run.py --quick` for a smoke run.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run.py

# The sandbox MCP host's bundle (the official MCP Apps host and MCP client, from npm).
mcp-host:
	cd bridge/sandbox/mcp_host && npm ci --no-audit --no-fund && npm run build

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
