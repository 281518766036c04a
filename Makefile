# pflambda -- two commands on a fresh machine: `make local` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint typecheck unit local bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict pflambda

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

test: lint typecheck
	$(BIN)/pytest -q -n 2 --dist loadgroup

local: $(STAMP)
	$(BIN)/pflambda local --host 127.0.0.1 --port 8080

bench: $(STAMP)
	$(BIN)/python bench/core_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
