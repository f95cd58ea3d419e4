"""The Spark session every Spark step uses, configured from SparkConfig (local[*] by default)."""

from __future__ import annotations

import os

from recsys_core.config import SparkConfig


def spark_session(cfg: SparkConfig, app: str):
    from pyspark.sql import SparkSession

    # the executors' Python must be the driver's (the project's .venv), wherever the job was launched
    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    return (
        SparkSession.builder.appName(app)
        .master(cfg.master)
        .config("spark.driver.memory", cfg.driver_memory)
        .config("spark.sql.shuffle.partitions", str(cfg.shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
