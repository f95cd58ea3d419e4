# Two commands for a newcomer: `make demo` and `make test`. Everything installs into .venv from the lockfile.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
DEMO_DATA := data/sample
DEMO_DS ?= 2026-01-31

.PHONY: setup browser demo test test-unit test-spark test-integration lint format lock clean

setup: $(STAMP)

# The locked packages are installed with their bytecode compiled: every job, Airflow task and test
# process would otherwise compile TensorFlow's, Great Expectations' and Airflow's sources again at
# import wherever bytecode is not written (PYTHONDONTWRITEBYTECODE): `import tensorflow` 9.5 s -> 3.5 s.
# `sync` makes .venv exactly the lock (removing what an older lock installed, e.g. pyspark-client);
# pyspark is reinstalled because a removed pyspark-client takes the pyspark/ files it overwrote along.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python --reinstall-package pyspark requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/recsys generate --out $(DEMO_DATA)
	$(BIN)/recsys run --data $(DEMO_DATA) --ds $(DEMO_DS)
	$(BIN)/recsys recommend --ds $(DEMO_DS) --sample 3

# Workers of the whole suite: each takes whole test files (--dist loadfile), so a module's DagRun is
# built once; on 2 cores the integration runs overlap the unit and Spark tests. The files go out in the
# order tests/conftest.py puts them (longest first); xdist's own reorder (most tests first) would leave
# the few-test, many-minute DAG files for last, on one worker while the other idles.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Debian's chromium for the browser tests (tests/browser/): installed where it is missing and apt-get
# may run (root: CI, a container); elsewhere those tests skip unless RECSYS_REQUIRE_BROWSER is set
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	       && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium is not installed and cannot be here: the browser tests will skip"

# the whole suite, every tier: what CI runs
test: $(STAMP) browser
	$(BIN)/python -m pytest $(XDIST)

# the edit-run loop: in-process tests, no Spark or Airflow (about 4 minutes on 2 cores)
test-unit: $(STAMP)
	$(BIN)/python -m pytest -m "unit and not slow" -n $(TEST_WORKERS)

test-spark: $(STAMP)
	$(BIN)/python -m pytest -m spark

test-integration: $(STAMP)
	$(BIN)/python -m pytest -m integration $(XDIST)

# what CI checks before the tests: lint, formatting and types
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-resolve the lockfiles after changing dependencies in pyproject.toml: requirements.lock (the project
# with its dev tools: make setup, CI) and requirements-runtime.lock (the image: no dev tools), from the
# same resolution, without the packages requirements.exclude names.
LOCK_FLAGS := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --excludes requirements.exclude
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) -c requirements.lock -o requirements-runtime.lock

clean:
	rm -rf $(VENV) .airflow data/lake data/models data/warehouse.duckdb
