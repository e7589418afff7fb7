# make run: the whole app locally on real emulators. make test: every check and test, as CI runs them.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: help deps browser infra-deps lock sbom audit run stack app tenant test suite lint typecheck unit integration e2e readme-test infra-check bench clean

help:  ## this list
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z0-9-]+):.*## /  make \1\t/' | expand -t 20

# Installs only what the hash-locked requirements-dev.txt names (pip itself included): a file whose hash is not in
# the lock is refused, whichever index served it. Wheels only, so no package's build code runs, except the two
# sdists requirements.in names. The machine's pip.conf (a torch cap in a constraint file, local file indexes)
# stays in force: the cap names nothing we install and cannot loosen the hash check.
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check --require-hashes \
	--only-binary :all: --no-binary pybars4,pymeta3
# Locks resolve from PyPI alone (uv reads no pip.conf), for Python 3.11 on every OS (a developer on macOS or
# Windows installs the same lock); the hashes cover every file of a pinned release. Extras stay in the lock
# (pyjwt[crypto]==...): with a bare pin, pip's hash mode refuses a dependency's `name[extra]>=x` as soon as a
# newer release than the pin exists (pip-audit's CacheControl[filecache] broke `make deps` that way).
UV_COMPILE := $(PY) -m uv pip compile --quiet --generate-hashes --universal --python-version 3.11 --no-strip-extras \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade-package $(UPGRADE))
# The SBOM's root component is aigw (pyproject.toml). A lock says which packages, not which needs which, so
# cyclonedx-py warns that the dependency graph is incomplete; that is known and the warning is muted.
SBOM := sbom.cdx.json
AUDIT_TIMEOUT := 20
# `make audit` fails when PyPI's vulnerability data cannot be reached (it has not audited anything then).
# Within `make test` that case prints NOT AUDITED and goes on: the machines this project's CI runs on reach
# PyPI's index but not its per-release JSON, so a strict audit there could never pass. Findings and expired
# ignore entries fail in both. The GitHub workflow runs the strict `make audit`.
AUDIT_UNREACHABLE ?= fail

# The tests run in TEST_WORKERS pytest-xdist processes, each file whole in one of them (--dist loadfile:
# a module's app and fixtures start once). Each worker starts its own emulators, simulators and apps on
# ports of its own (tests/conftest.py). The e2e files mostly wait on those processes: on the 2-core CI
# machine the whole suite (1748 tests) took 209-237 s alone with 4 workers (6m22s-7m21s of CPU) and
# 200-230 s in `make test` beside the static checks (2026-12-07: the same commit varies by a tenth
# from hour to hour). TEST_WORKERS=0 runs them in this one process, as a plain `pytest` does.
TEST_WORKERS ?= 4
# The suite's ~60 Python processes (each worker, ~50 app starts, the simulators) import the same modules:
# their bytecode is written to __pycache__ (gitignored) even where the environment turns that off
# (PYTHONDONTWRITEBYTECODE=1 on the CI machine). Otherwise every process of a fresh clone compiles the
# project's modules again and each worker rewrites every test module's asserts (5 s of CPU a worker).
export PYTHONDONTWRITEBYTECODE :=
# What the static checks run under: nothing when called alone; `make test` lowers their priority (below).
BESIDE ?=
# The fits the tests re-run (bench/safety_fit.py, bench/routing_fit.py) use numpy, whose OpenBLAS starts a
# thread per core for each matrix product. With more workers than cores those threads only wait on each
# other: test_the_shipped_weights_are_what_the_fit_writes_from_dev took 15 s of CPU with them, 9.7 s without.
PYTEST := OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

$(PY_STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(PY_STAMP) $(NODE_STAMP)  ## create .venv and node_modules (every other target does it too)

# The console's browser test (tests/e2e/test_console_browser.py) drives Debian's chromium through its
# chromium-driver with selenium: installed from the distribution when missing (no browser download).
browser:  ## Debian's chromium and chromium-driver, installed with apt-get when missing
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update && $$sudo apt-get install -y --no-install-recommends chromium chromium-driver; }

lock: $(PY_STAMP)  ## re-lock requirements.txt, requirements-dev.txt, infra/checkov-requirements.txt from their .in files (UPGRADE=name)
	$(UV_COMPILE) requirements.in -o requirements.txt
	$(UV_COMPILE) requirements-dev.in -o requirements-dev.txt
	$(UV_COMPILE) infra/checkov-requirements.in -o infra/checkov-requirements.txt

sbom: $(PY_STAMP)  ## CycloneDX JSON of what is deployed (requirements.txt) into sbom.cdx.json
	$(PY) -W "ignore:The Component this BOM is describing" -m cyclonedx_py requirements requirements.txt --pyproject pyproject.toml --mc-type application --output-format JSON --output-file $(SBOM)
	$(PY) -c "import json; c = json.load(open('$(SBOM)'))['components']; print(f'$(SBOM): {len(c)} packages')"

audit: $(PY_STAMP)  ## pip-audit of requirements.txt against PyPI's advisories; audit-ignore.toml lists reviewed exceptions
	$(BESIDE) $(PY) -m tests.support.audit requirements.txt --timeout $(AUDIT_TIMEOUT) --unreachable $(AUDIT_UNREACHABLE)

run: deps  ## Azurite, the Cosmos emulator, two simulator regions and the app on :7071, until Ctrl-C
	$(PY) -m tools.localenv run

stack: deps  ## only the emulators and simulators, until Ctrl-C (their data outlives app restarts)
	$(PY) -m tools.localenv deps

app: deps  ## only the app, against a `make stack` running in another terminal
	$(PY) -m tools.localenv app

tenant: $(PY_STAMP)  ## add a tenant and a new key to local.settings.json: make tenant NAME=acme
	@test -n "$(NAME)" || { echo "usage: make tenant NAME=<tenant name>" >&2; exit 2; }
	$(PY) -m tools.tenants add "$(NAME)"

lint: $(PY_STAMP)  ## ruff and the import contracts of pyproject.toml (import-linter)
	$(BESIDE) $(PY) -m ruff check .
	$(BESIDE) $(VENV)/bin/lint-imports --no-logo

typecheck: $(PY_STAMP)  ## mypy (strict)
	$(BESIDE) $(PY) -m mypy

infra-check: $(PY_STAMP)  ## Bicep checks (checkov)
	$(BESIDE) bash infra/checkov.sh

infra-deps:  ## checkov's own venv, from infra/checkov-requirements.txt (infra-check makes it too, when missing)
	bash infra/checkov.sh --install-only

unit: $(PY_STAMP)  ## unit tests (no emulators)
	$(PYTEST) tests/unit

integration: deps  ## integration tests on real emulators and the simulator
	$(PYTEST) tests/integration

e2e: deps browser  ## end-to-end tests: the app over HTTP (and the console in chromium)
	$(PYTEST) tests/e2e

readme-test: deps  ## run the README's examples against a fresh stack (part of make test)
	$(PY) -m pytest tests/e2e/test_readme.py -q

# First every install at once: the venv, node_modules, the browser and checkov's own venv (pip is mostly
# one core; the checkov venv is 25 s of CPU, which used to be spent beside the suite on a fresh clone).
# Then the static checks run beside the suite, not before it, at a lower CPU priority (BESIDE): they take
# the CPU the suite leaves while it waits on its emulators and apps, instead of slowing it (mypy is half a
# minute of CPU on a 2-core machine). Each target's output is printed whole when it ends; any failure
# fails `make test`.
test:  ## lint, type-check, infra checks, the audit and the whole test suite, side by side (what CI runs)
	$(MAKE) --no-print-directory --output-sync=target -j4 deps browser infra-deps
	$(MAKE) --no-print-directory --output-sync=target -j5 suite lint typecheck infra-check audit AUDIT_UNREACHABLE=warn \
		BESIDE="nice -n 15"

suite: deps browser  ## the whole test suite alone, without the static checks
	$(PYTEST)

bench: deps  ## benchmarks (print figures, assert nothing)
	$(PY) -m bench resilience
	$(PY) -m bench cache
	$(PY) -m bench semantic_cache
	$(PY) -m bench overhead

clean:  ## remove .local (emulator data, logs) and tool caches
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache
