# The two commands of the quick start: `make run` and `make test`.
# Both create .venv and install the project on first use (or when
# pyproject.toml changes); nothing but Python 3.11 and gcc is needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format bench clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

## Start the embedded PostgreSQL, migrate, and serve the API on $(HOST):$(PORT).
run: $(INSTALLED)
	$(BIN)/ragstore serve --host $(HOST) --port $(PORT)

## Lint, then the whole test suite (real PostgreSQL, fake OpenAI server on 127.0.0.1).
test: lint
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app

## Every benchmark at its default size: tables on screen, JSON in bench/results/.
bench: $(INSTALLED)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python -m bench.ingest_vs_original
	$(BIN)/python -m bench.write_path
	$(BIN)/python -m bench.cache
	$(BIN)/python -m bench.chat_overhead
	$(BIN)/python -m bench.retrieval_quality
	$(BIN)/python -m bench.search_scale
	$(BIN)/python -m bench.memory
	$(BIN)/python -m bench.other_stores
	$(BIN)/python -m bench.load

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
