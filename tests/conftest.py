"""Shared pytest fixtures."""

from __future__ import annotations

import os
import sys

import pytest


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
