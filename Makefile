# energysched: `make experiment` runs the main job on a local cluster, `make test` passes the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
WEIGHT ?= 0.5
NODES ?= 0
PERF_ARGS ?=

.PHONY: install lint typecheck test test-unit test-integration cluster-up cluster-down cluster-build clean experiment perf

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

test-unit: install
	$(BIN)/pytest -m unit -q

test-integration: install cluster-build
	$(BIN)/pytest -m integration -q

# The README's test command: static checks, then unit and integration tests
# (one local control plane per session, started and stopped by the tests).
test: lint typecheck cluster-build
	$(BIN)/pytest -q

cluster-build: install
	$(BIN)/energysched cluster build

cluster-up: install
	$(BIN)/energysched cluster up --nodes $(NODES)

cluster-down: install
	$(BIN)/energysched cluster down

# Benchmark, not a test: energysched vs kube-scheduler draining a backlog of pods on a local
# KWOK cluster (default 1,000 nodes x 5,000 pods; client limits 50:100 and uncapped 5000:10000;
# energysched normalized and hybrid, the monitor's model mode running); writes
# results/perf.json and BENCHMARKS.md. Run it on a quiet machine.
# E.g. make perf PERF_ARGS='--nodes 5000 --pods 5000'
perf: install cluster-build
	$(PY) -m energysched.lab.perf $(PERF_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache results

# The main job: the ML workflow with kube-scheduler and with energysched on a
# local cluster (started and stopped here), compared. WEIGHT=0.0 .. 1.0.
MODE ?= normalized
experiment: cluster-build
	$(BIN)/energysched experiment --weight $(WEIGHT) --mode $(MODE)
