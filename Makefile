# Workroom: `make run` serves the app, `make test` runs every test.
# Everything installs into the repo: .venv (Python) and .tools (bun, from npm).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
BUN := $(TOOLS)/node_modules/.bin/bun
PORT ?= 3000
# Exported so the app's public URL (links in emails) follows the port it serves on.
export PORT

export PATH := $(abspath $(TOOLS)/node_modules/.bin):$(abspath $(BIN)):$(PATH)
export REFLEX_USE_SYSTEM_BUN := 1
export REFLEX_CHECK_LATEST_VERSION := false
export REFLEX_TELEMETRY_ENABLED := false
export NPM_CONFIG_REGISTRY ?= $(shell npm config get registry 2>/dev/null)

.PHONY: setup test-setup run run-scaled test test-fast lint typecheck bench worker clean

setup: $(VENV)/.installed $(BUN)

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==26.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $@

$(BUN):
	mkdir -p $(TOOLS)
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) bun@1.4.5
	$(BUN) --version

AXE := $(TOOLS)/node_modules/axe-core/axe.min.js

test-setup: setup $(VENV)/.test-installed $(AXE)
	@bash scripts/ensure-chromium.sh

# axe-core (accessibility checks injected by the browser tests), pinned.
$(AXE):
	mkdir -p $(TOOLS)
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) axe-core@4.14.1

$(VENV)/.test-installed: pyproject.toml constraints.txt $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $@

run: setup
	$(BIN)/workroom db upgrade
	$(BIN)/workroom seed-demo
	@$(BIN)/workroom demo-logins --url http://localhost:$(PORT)
	$(BIN)/reflex run --env prod --single-port --frontend-port $(PORT) --backend-port $(PORT)

# Several web workers (Redis state manager) + PostgreSQL + separate generation workers; docs/deploy.md.
run-scaled: setup
	PORT=$(PORT) bash scripts/run-scaled.sh

test: test-setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything but the browser and the minutes-long (`slow`) tests, on every core (pytest-xdist):
# the inner loop, under two minutes on a 2-core machine. `make test` still runs all of them.
test-fast: setup $(VENV)/.test-installed
	$(BIN)/python -m pytest -m "not browser and not slow" -n auto $(PYTEST_ARGS)

# ruff lint rules and formatting (pyproject.toml [tool.ruff]); `ruff format .` fixes the latter.
lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy on billing/ and generation/ (pyproject.toml [tool.mypy]); no baseline, no errors.
typecheck: $(VENV)/.test-installed
	$(BIN)/python -m mypy

bench: setup
	$(BIN)/workroom bench ledger

clean:
	rm -rf $(VENV) $(TOOLS) .web .states
