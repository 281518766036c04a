# pflambda -- two commands on a fresh machine: `make local` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install dist test test-deep lint typecheck unit local bench clean sam sam-build sam-check bundle-test tck browser

# aws-sam-cli pins its own boto3, so it lives in a venv of its own.
SAM_VENV    ?= .sam-venv
SAM_VERSION ?= 1.170.0
SAM         := $(SAM_VENV)/bin/sam
SAM_STAMP   := $(SAM_VENV)/.installed-$(SAM_VERSION)
export SAM_CLI_TELEMETRY := 0
# The Lambda runtime is python3.12: the bundle test runs the built code on it -- pyenv's
# 3.12 if there is one, else a python3.12 on PATH, else the test falls back to the venv's.
PY312       ?= $(or $(lastword $(sort $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12*/bin/python3.12))),$(shell command -v python3.12 2>/dev/null))
LAMBDA_PIP  ?= $(PYTHON) -m pip
# Lambda's /var/task and /opt are read-only: a bundle without bytecode compiles every module
# it imports on every cold start, and keeps nothing. So the build compiles them for the
# runtime (python3.12), hash-based and unchecked (the bundle never changes after the build).
COMPILE_FOR_RUNTIME = $(if $(PY312),$(PY312) -m compileall -q -j 0 --invalidation-mode unchecked-hash,@echo "no python3.12 found, shipping without bytecode:")

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV): pflambda and its development tools (about a minute the first time)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The wheel and sdist of pflambda in dist/, built with the venv's setuptools (no download).
dist: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m build --no-isolation --outdir dist .
	@ls -l dist

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml

typecheck: $(STAMP)
	$(BIN)/mypy --strict pflambda

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test: lint typecheck browser
	$(BIN)/pytest -q -n 2 --dist loadgroup

# The console's browser tests drive Debian's Chromium (Playwright's own download is not
# used). Installed here when missing and we are root; otherwise those tests fail and say
# how to get it (PFLAMBDA_SKIP_BROWSER=1 skips them on purpose).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { test "$$(id -u)" = 0 && apt-get install -y chromium >/dev/null \
	    || (apt-get update >/dev/null && apt-get install -y chromium >/dev/null); } \
	    || echo "no $(CHROMIUM): the browser tests will fail (apt-get install chromium)"

# Nightly-style: every hypothesis test with fresh random seeds and 20x the examples (tests/conftest.py).
test-deep: $(STAMP)
	HYPOTHESIS_PROFILE=deep $(BIN)/pytest -q -n 2 --dist loadgroup -m hypothesis

PORT ?= 8080
local: $(STAMP)
	$(BIN)/pflambda local --host 127.0.0.1 --port $(PORT)

# The official A2A TCK (1.0 over JSON-RPC and HTTP+JSON; 0.3 mandatory and capabilities)
# against `pflambda local` serving tests/tck/handlers. Installs the TCK into .tck/ (once).
tck: $(STAMP)
	$(BIN)/python tests/tck/run.py

bench: $(STAMP)
	$(BIN)/python bench/core_overhead.py

# -- AWS SAM: template.yaml -------------------------------------------------------------

$(SAM_STAMP):
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli==$(SAM_VERSION)'
	@touch $@

sam: $(SAM_STAMP)

sam-build: $(SAM_STAMP) $(STAMP)
	$(SAM) build --build-in-source --parallel --template-file template.yaml

sam-check: $(SAM_STAMP)
	$(SAM) validate --lint --template-file template.yaml
	$(MAKE) --no-print-directory sam-build

# The built bundles run as Lambda runs them (tests/functional/test_built_bundle.py), then
# bench/bundle.py prints their sizes and cold-start imports. .aws-sam/runtime stands in for
# the runtime's boto3 (and, off arm64, holds the layer's requirements built for this machine).
RUNTIME_PY  = $(or $(PY312),$(BIN)/python)
bundle-test: $(STAMP)
	rm -rf .aws-sam/runtime
	$(RUNTIME_PY) -m pip install --quiet --disable-pip-version-check \
	    --target .aws-sam/runtime 'boto3>=1.34' -r infra/layer-requirements.txt
	PFLAMBDA_REQUIRE_SAM_BUILD=1 PFLAMBDA_BUNDLE_PYTHON='$(PY312)' \
	    $(BIN)/pytest -q tests/functional/test_built_bundle.py
	$(BIN)/python bench/bundle.py --python '$(RUNTIME_PY)'

# `sam build` runs these (BuildMethod: makefile in template.yaml); with --build-in-source
# here, without in a copy of the whole directory.
# Each function: its handler, the project modules it imports and pflambda (pflambda.bundle);
# ResearchFunction is handlers/research.handler.
build-%Function: $(STAMP)
	@test -n "$(ARTIFACTS_DIR)" || { echo "run through sam build (it sets ARTIFACTS_DIR)"; exit 2; }
	PFLAMBDA_STORE=memory $(BIN)/python -m pflambda.bundle \
	    "handlers/$$(echo '$*' | tr '[:upper:]' '[:lower:]').handler" "$(ARTIFACTS_DIR)"
	$(COMPILE_FOR_RUNTIME) "$(ARTIFACTS_DIR)"

# The shared layer: infra/layer-requirements.txt for python3.12 on arm64, under python/.
build-DepsLayer:
	@test -n "$(ARTIFACTS_DIR)" || { echo "run through sam build (it sets ARTIFACTS_DIR)"; exit 2; }
	mkdir -p "$(ARTIFACTS_DIR)/python"
	$(LAMBDA_PIP) install --quiet --disable-pip-version-check --no-compile \
	    --target "$(ARTIFACTS_DIR)/python" --implementation cp --python-version 3.12 \
	    --platform manylinux2014_aarch64 --only-binary=:all: -r infra/layer-requirements.txt
	$(COMPILE_FOR_RUNTIME) "$(ARTIFACTS_DIR)/python"

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache .hypothesis $(SAM_VENV) .aws-sam
