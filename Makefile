# Quick start: `make run` starts the relay from relay.example.yml; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= relay.example.yml

.PHONY: run test lint typecheck bench chaos backlog clean

# setup.py and the C source: a changed walker is rebuilt (in place, by the editable install).
$(STAMP): pyproject.toml setup.py $(wildcard relay/scrub/*.c relay/scrub/*.h)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/relay run --config $(CONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check relay tests bench
	$(BIN)/ruff format --check relay tests bench
	$(BIN)/mypy

typecheck: $(STAMP)
	$(BIN)/mypy

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,dev,bench]'
	touch $(BENCH_STAMP)

# Scrub engine vs sentry_relay first, then the end-to-end run (bench/README-perf.md); ~3 minutes.
bench: $(BENCH_STAMP)
	$(BIN)/python bench/scrub_bench.py
	$(BIN)/python bench/ext_bench.py
	$(BIN)/python bench/perf.py

chaos: $(STAMP)
	$(BIN)/python bench/chaos.py

backlog: $(STAMP)
	$(BIN)/python bench/backlog.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
