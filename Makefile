# pflambda -- two commands on a fresh machine: `make local` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-deep lint typecheck unit local bench clean sam sam-build sam-check bundle-test tck

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

$(STAMP): pyproject.toml
	@echo "Setting up $(VENV): pflambda and its development tools (about a minute the first time)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml

typecheck: $(STAMP)
	$(BIN)/mypy --strict pflambda

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test: lint typecheck
	$(BIN)/pytest -q -n 2 --dist loadgroup

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

sam-build: $(SAM_STAMP)
	$(SAM) build --build-in-source --parallel --template-file template.yaml

sam-check: $(SAM_STAMP)
	$(SAM) validate --lint --template-file template.yaml
	$(MAKE) --no-print-directory sam-build

bundle-test: $(STAMP)
	PFLAMBDA_REQUIRE_SAM_BUILD=1 PFLAMBDA_BUNDLE_PYTHON='$(PY312)' \
	    $(BIN)/pytest -q tests/functional/test_built_bundle.py

# `sam build` runs this for each function (BuildMethod: makefile in template.yaml):
# the packages the handlers import, and requirements.txt for python3.12 on arm64.
# With --build-in-source it runs here; without, in a copy of the whole directory.
build-%Function:
	@test -n "$(ARTIFACTS_DIR)" || { echo "run through sam build (it sets ARTIFACTS_DIR)"; exit 2; }
	mkdir -p "$(ARTIFACTS_DIR)"
	cp -R pflambda handlers flows "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)" -depth -type d -name __pycache__ -exec rm -rf {} +
	$(LAMBDA_PIP) install --quiet --disable-pip-version-check --no-compile \
	    --target "$(ARTIFACTS_DIR)" --implementation cp --python-version 3.12 \
	    --platform manylinux2014_aarch64 --only-binary=:all: -r requirements.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis $(SAM_VENV) .aws-sam
