# Two set-up commands for a fresh machine (see README.md):
#   make run   - install ClawFleet into .venv and start the control plane (`clawfleet up`)
#   make test  - install with the dev tools, then lint, type-check, check layers, run every test
#   make fuzz  - a longer schemathesis run over the whole API (FUZZ_EXAMPLES, FUZZ_SEED)
#
# Only the system Python is assumed. uv is bootstrapped from the package index into .tools/,
# and the project's virtual environment is built from the hashed lock files.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
# Resolve a pyenv shim (or any wrapper) to the real interpreter once, so nothing later pays for it.
PY := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never

.PHONY: run test lint typecheck layers pytest fuzz install install-dev bench clean

run: install
	$(BIN)/clawfleet up $(ARGS)

test: install-dev lint typecheck layers pytest

LINT_PATHS := src tests $(wildcard bench)

lint:
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck:
	$(BIN)/mypy src

layers:
	$(BIN)/lint-imports

pytest:
	$(BIN)/pytest $(PYTEST_ARGS)

# `make test` runs the fuzz suite (tests/fuzz) with a budget of about two minutes; this is the
# same suite with FUZZ_EXAMPLES generated cases per operation and caller (default 200) and the
# boundary-value cases of every parameter (FUZZ_COVERAGE), about half an hour on two cores.
# FUZZ_SEED=N explores other cases.
FUZZ_EXAMPLES ?= 200
fuzz: install-dev
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_COVERAGE=1 $(BIN)/pytest -m fuzz -p no:cacheprovider $(PYTEST_ARGS)

$(UV):
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/pyvenv.cfg: | $(UV)
	$(UV) venv --quiet --python $(PY) $(VENV)

install: $(VENV)/.installed-run
install-dev: $(VENV)/.installed-dev

$(VENV)/.installed-run: requirements.lock pyproject.toml | $(VENV)/pyvenv.cfg
	$(UV) pip install --quiet --python $(BIN)/python --require-hashes -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

$(VENV)/.installed-dev: requirements-dev.lock pyproject.toml | $(VENV)/pyvenv.cfg
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes requirements-dev.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.installed-run
	touch $@ $(VENV)/.installed-run

# requirements-dev.lock pins the `dev` group (linters, pytest, hypothesis, schemathesis), made with:
#   $(UV) pip compile --python-version 3.11 --generate-hashes --no-header \
#       --group dev pyproject.toml -o requirements-dev.lock
# The dispatch benchmark (bench/README.md). requirements-bench.lock is the dev lock plus the
# `bench` group (Celery, Redis client, py-spy), made with:
#   $(UV) pip compile --python-version 3.11 --generate-hashes --no-header \
#       --group dev --group bench pyproject.toml -o requirements-bench.lock
# It is installed on top (not synced), so the dev tools stay. Needs redis-server and the
# PostgreSQL server binaries (bench/README.md).
bench: install-dev
	$(UV) pip install --quiet --python $(BIN)/python --require-hashes -r requirements-bench.lock
	$(BIN)/python bench/dispatch.py --json bench/results/dispatch.json $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .ruff_cache .pytest_cache
