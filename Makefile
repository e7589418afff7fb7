# make run: the whole app locally on real emulators. make test: every check and test, as CI runs them.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: help deps run test lint typecheck unit integration e2e infra-check bench clean

help:
	@echo "make run    start Azurite, the Cosmos emulator, two simulator regions and the app on :7071"
	@echo "make test   lint, type-check, infra checks and the whole test suite (what CI runs)"
	@echo "make bench  benchmarks (print figures)"

$(PY_STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(PY_STAMP) $(NODE_STAMP)

run: deps
	$(PY) -m tools.localenv run

lint: $(PY_STAMP)
	$(PY) -m ruff check .

typecheck: $(PY_STAMP)
	$(PY) -m mypy

infra-check: $(PY_STAMP)
	bash infra/checkov.sh

unit: $(PY_STAMP)
	$(PY) -m pytest tests/unit -q

integration: deps
	$(PY) -m pytest tests/integration -q

e2e: deps
	$(PY) -m pytest tests/e2e -q

test: deps lint typecheck infra-check
	$(PY) -m pytest -q

bench: deps
	$(PY) -m bench resilience
	$(PY) -m bench cache
	$(PY) -m bench semantic_cache

clean:
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache
