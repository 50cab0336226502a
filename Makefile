# energysched: `make experiment` runs the main job on a local cluster, `make test` passes the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
WEIGHT ?= 0.5
NODES ?= 0
PERF_ARGS ?=

.PHONY: install lint typecheck check test test-unit test-integration test-images cluster-up cluster-down cluster-build clean experiment perf images deploy undeploy

$(VENV)/.installed: pyproject.toml lab/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -e '.[test]' -e ./lab
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy

# The contributor's loop (every few minutes): static checks and the unit tests that need
# nothing outside the venv (no Go, no Debian PyTorch, no cluster). README, "Contributing".
check: lint typecheck
	$(BIN)/pytest tests/unit -m "unit and not go and not torch" -q -n auto --dist worksteal

test-unit: install
	$(BIN)/pytest -m unit -q

# The local control plane's tests; the image tests have their own target (test-images).
test-integration: install cluster-build
	$(BIN)/pytest -m integration -q

# Builds the images (cached, as make images) and runs them: docker, mmdebstrap, qemu-user.
test-images: install cluster-build
	$(BIN)/pytest -m images -q

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
	$(PY) -m energysched_lab.perf $(PERF_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache results

# The main job: a scenario's workload placed by kube-scheduler and by energysched on a
# local cluster (started and stopped here), judged by the scenario's ground truth.
# make experiment WEIGHT=0.5 | WEIGHTS=0,0.25,0.5,0.75,1 REPEATS=3 | MODE=static-raw,normalized,hybrid
# | SCENARIO=kb/scenarios/quiet-hours | POWER=on|off|both | CLUSTER=current (a real cluster: $$KUBECONFIG;
# EXPERIMENT_ARGS='--data-claim NAME --image IMAGE' for the workflow's volume and image). See README.
# MODE defaults to the scheduler's own default (energysched/contract.py DEFAULT_SCORING_MODE).
MODE ?= cluster-energy
WEIGHTS ?= $(WEIGHT)
REPEATS ?= 1
SCENARIO ?= kb/scenarios/thesis
CLUSTER ?= local
# POWER=off|on|both: every scheduler without and/or with the power manager (idle nodes
# sleep, pods that fit no awake node wake one); the default shows the difference.
# A real cluster (CLUSTER=current) runs without it.
POWER ?= $(if $(filter local,$(CLUSTER)),both,off)
EXPERIMENT_ARGS ?=
# Only the local cluster needs the control plane binaries: CLUSTER=current builds nothing.
experiment: install $(if $(filter local,$(CLUSTER)),cluster-build)
	$(BIN)/energysched experiment --weights $(WEIGHTS) --repeats $(REPEATS) --mode $(MODE) \
		--scenario $(SCENARIO) --cluster $(CLUSTER) --power $(POWER) $(EXPERIMENT_ARGS)

# Container images, built here from Debian packages (no registry needed): the product
# image (energysched) and the ML workflow image for amd64, arm64 and arm/v7, saved to
# ~/.cache/energysched/images/out/. E.g. make images ARCHES=amd64;
# make images REGISTRY=registry.local:5000 TAG=0.1.0 PUSH=1 pushes a multi-arch list.
ARCHES ?= amd64,arm64,armv7
TAG ?= dev
REGISTRY ?=
PUSH ?=
IMAGES ?= energysched,energysched-mlworkflow
images: install
	$(PY) -m energysched_lab.images --arch $(ARCHES) --image $(IMAGES) --tag $(TAG) \
		$(if $(REGISTRY),--registry $(REGISTRY)) $(if $(filter 1,$(PUSH)),--push)

# Install energysched on the CURRENT kube context (named before anything is applied) and
# wait until every component is ready; undeploy keeps the CRD and profiles (PURGE_CRD=1 not).
# E.g. make deploy OVERLAY=manifests/overlays/thesis, or the local test cluster:
#   KUBECONFIG=$$(.venv/bin/energysched cluster kubeconfig) make deploy OVERLAY=manifests/overlays/local
OVERLAY ?= manifests/base
KUBECTL ?= kubectl
deploy:
	KUBECTL=$(KUBECTL) manifests/deploy.sh deploy $(OVERLAY)

undeploy:
	KUBECTL=$(KUBECTL) manifests/deploy.sh undeploy $(OVERLAY)
