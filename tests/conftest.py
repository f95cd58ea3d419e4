"""Shared pytest fixtures, and the tiers every test falls in (see the README's Tests section)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import uuid
from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"
TIERS = ("unit", "spark", "integration")


# The longest test files, longest first (`pytest --durations=0` summed per file, 2 workers): the suite
# runs them first, so that with `--dist loadfile` the two workers finish together instead of one worker
# starting a 5-minute DAG run while the other has nothing left to do.
LONGEST_FIRST = (
    "integration/test_nightly_dag.py",
    "integration/test_airflow_services.py",
    "browser/test_airflow_ui.py",
    "integration/test_movielens_dag.py",
    "recsys_core/evaluation/test_systems.py",
    "jobs/test_gate_model.py",
    "recsys_cli/test_bench.py",
    "jobs/test_feeds_that_lie.py",
    "integration/test_publish_while_reading.py",
)


def _file_rank(item) -> int:
    path = Path(str(item.fspath)).as_posix()
    for rank, name in enumerate(LONGEST_FIRST):
        if path.endswith("tests/" + name):
            return rank
    return len(LONGEST_FIRST)


def pytest_collection_modifyitems(items):
    """Tests under tests/integration/ are integration tests; a test that takes the `spark` fixture is a
    Spark test; every other test without a tier is a unit test. `slow` is set by hand, on top of a tier.
    The longest files go first (a stable sort: each file's tests keep their order)."""
    items.sort(key=_file_rank)
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
        elif "spark" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.spark)
        if not any(item.get_closest_marker(tier) for tier in TIERS):
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def spark():
    """One small local Spark session for every Spark test of the run, stopped at the end."""
    from pyspark.sql import SparkSession

    # the Python workers must run the interpreter of the test run (the project's .venv)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.appName("recsys-tests")
        .master("local[2]")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    # py4j logs "closing down" from __del__ at interpreter exit, after pytest has closed the streams
    logging.getLogger("py4j").setLevel(logging.WARNING)


PG_URL = os.environ.get("RECSYS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def pg_server():
    """The local PostgreSQL server: required in CI (fail), optional on a developer machine (skip)."""
    import psycopg

    try:
        psycopg.connect(PG_URL, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable in CI: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_URL}")
    return PG_URL


@contextlib.contextmanager
def pg_schema(server: str, name: str):
    """A URL whose search_path is a fresh schema named after `name`, dropped afterwards."""
    import psycopg

    schema = "t_" + re.sub(r"\W", "_", name.lower())[:40] + "_" + uuid.uuid4().hex[:6]
    with psycopg.connect(server, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in server else "?"
    try:
        yield f"{server}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(server, autocommit=True) as con:
            con.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_url(pg_server, request):
    """A PostgreSQL warehouse of this test alone (a schema of its own)."""
    with pg_schema(pg_server, request.node.name) as url:
        yield url


@pytest.fixture(scope="module")
def module_pg_url(pg_server, request):
    """A PostgreSQL warehouse shared by the tests of one module."""
    with pg_schema(pg_server, request.module.__name__.rsplit(".", 1)[-1]) as url:
        yield url
