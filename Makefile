# Flex Bridge: every command a developer or CI needs. Only Python 3.11+ is assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check
# What running needs, and (for tests and checks) the test and development tools too.
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev
STAMP := $(DEV)

.PHONY: run doctor test unit lint typecheck check install clean bench mcp-host

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUNTIME): pyproject.toml | $(BIN)/python
	@echo "Installing Flex Bridge and what it needs to run into $(VENV)/ (about 20 s the first time)..."
	$(PIP) -e .
	@touch $@

$(DEV): pyproject.toml | $(BIN)/python
	@echo "Installing the test and development tools into $(VENV)/ (Playwright, mypy, ruff...; about a minute the first time)..."
	$(PIP) -e '.[dev]'
	@touch $@ $(RUNTIME)

install: $(RUNTIME)

## Start the service (sandbox mode when no Twilio credentials are set).
run: $(RUNTIME)
	$(BIN)/python main.py serve

## Check the settings, the Twilio credentials and a running bridge (see docs/deploy.md).
doctor: $(RUNTIME)
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
