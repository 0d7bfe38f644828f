# Quick start: `make run` starts the relay from relay.example.yml; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= relay.example.yml

.PHONY: run test lint typecheck bench chaos backlog sanitize clean attack

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
	$(BIN)/python bench/replay_bench.py
	$(BIN)/python bench/perf.py

chaos: $(STAMP)
	$(BIN)/python bench/chaos.py

backlog: $(STAMP)
	$(BIN)/python bench/backlog.py

# The attack mix of issue 15 with the shipped manifests' limits (bench/attack.py); ~40 seconds.
attack: $(STAMP)
	cd bench && ../$(BIN)/python attack.py --extra "limits: {max_decompressed_size: 32MiB, max_envelope_size: 32MiB, max_attachment_size: 32MiB, max_inflight_bytes: 64MiB}"

# The C parts built with AddressSanitizer and UBSan into build/sanitize (their own objects: setup.py would reuse
# stale ones; the in-place module the rest of the suite imports is left as it is), then tests/scrub against that
# build, with the sanitizer runtimes preloaded (Python isn't built with them). Then the C-versus-Python fuzz and
# the boundary tests again with PYTHONMALLOC=malloc, so that ASan also sees each Python object (a string read
# past its end, a pair freed under the walk); that is 3x slower, so only for them. About 3 minutes.
SANITIZE_DIR := build/sanitize
SANITIZE_CFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -g -O1
FUZZ_EXAMPLES ?= 300
SANITIZE_ONLY_MALLOC := tests/scrub/test_c_boundaries.py tests/scrub/test_sanitize_fuzz.py
# Asserts wall-clock bounds (the 1 MB event within the scrub time bound): sanitized C is ~1.5x slower.
SANITIZE_DESELECT := tests/scrub/test_large_events.py::test_one_megabyte_event_is_scrubbed_without_stalling_small_ones

# Imports the sanitized build as relay.scrub._walker before anything imports the package, then runs pytest: with
# ASan's own SEGV handler (not faulthandler's) and fd 2 not captured, so that a report is printed, not lost.
define SANITIZE_PYTEST
import importlib.util, sys
spec = importlib.util.spec_from_file_location("relay.scrub._walker", sys.argv.pop(1))
walker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(walker)
sys.modules[spec.name] = walker
import pytest, relay.scrub.engine
assert relay.scrub.engine.Walker is walker.Walker, "the engine did not import the sanitized build"
sys.exit(pytest.main(sys.argv[1:]))
endef
export SANITIZE_PYTEST
SANITIZED = LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(BIN)/python -c "$$SANITIZE_PYTEST" $(SANITIZE_DIR)/lib/relay/scrub/_walker.*.so \
	-p no:cacheprovider -p no:faulthandler --capture=sys

sanitize: $(STAMP)
	rm -rf $(SANITIZE_DIR)
	CFLAGS="$(SANITIZE_CFLAGS)" $(BIN)/python setup.py -q build_ext \
		--build-temp $(SANITIZE_DIR)/temp --build-lib $(SANITIZE_DIR)/lib
	$(SANITIZED) tests/scrub $(addprefix --ignore=,$(SANITIZE_ONLY_MALLOC)) $(addprefix --deselect=,$(SANITIZE_DESELECT))
	PYTHONMALLOC=malloc RELAY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(SANITIZED) $(SANITIZE_ONLY_MALLOC)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
