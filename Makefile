# make run: the whole app locally on real emulators. make test: every check and test, as CI runs them.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: help deps run stack app tenant test lint typecheck unit integration e2e readme-test infra-check bench clean

help:  ## this list
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):.*## /  make \1\t/' | expand -t 20

$(PY_STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(PY_STAMP) $(NODE_STAMP)  ## create .venv and node_modules (every other target does it too)

run: deps  ## Azurite, the Cosmos emulator, two simulator regions and the app on :7071, until Ctrl-C
	$(PY) -m tools.localenv run

stack: deps  ## only the emulators and simulators, until Ctrl-C (their data outlives app restarts)
	$(PY) -m tools.localenv deps

app: deps  ## only the app, against a `make stack` running in another terminal
	$(PY) -m tools.localenv app

tenant: $(PY_STAMP)  ## add a tenant and a new key to local.settings.json: make tenant NAME=acme
	@test -n "$(NAME)" || { echo "usage: make tenant NAME=<tenant name>" >&2; exit 2; }
	$(PY) -m tools.tenants add "$(NAME)"

lint: $(PY_STAMP)  ## ruff
	$(PY) -m ruff check .

typecheck: $(PY_STAMP)  ## mypy (strict)
	$(PY) -m mypy

infra-check: $(PY_STAMP)  ## Bicep checks (checkov)
	bash infra/checkov.sh

unit: $(PY_STAMP)  ## unit tests (no emulators)
	$(PY) -m pytest tests/unit -q

integration: deps  ## integration tests on real emulators and the simulator
	$(PY) -m pytest tests/integration -q

e2e: deps  ## end-to-end tests: the app over HTTP
	$(PY) -m pytest tests/e2e -q

readme-test: deps  ## run the README's examples against a fresh stack (part of make test)
	$(PY) -m pytest tests/e2e/test_readme.py -q

test: deps lint typecheck infra-check  ## lint, type-check, infra checks and the whole test suite (what CI runs)
	$(PY) -m pytest -q

bench: deps  ## benchmarks (print figures, assert nothing)
	$(PY) -m bench resilience
	$(PY) -m bench cache
	$(PY) -m bench semantic_cache
	$(PY) -m bench overhead

clean:  ## remove .local (emulator data, logs) and tool caches
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache
