"""The Spark session every Spark step uses, configured from SparkConfig (local[*] by default)."""

from __future__ import annotations

import logging
import os
import threading

from recsys_core.config import SparkConfig

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 15.0


def _log_progress(sc, stop: threading.Event, every: float) -> None:
    """Log the active Spark stages and their task counts, so a task log shows where a long job is."""
    tracker = sc.statusTracker()
    while not stop.wait(every):
        for stage_id in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                log.info("spark stage %d (%s): %d/%d tasks done, %d running", stage_id, info.name.split(" at ")[0],
                         info.numCompletedTasks, info.numTasks, info.numActiveTasks)


def spark_session(cfg: SparkConfig, app: str, progress_seconds: float = PROGRESS_SECONDS):
    from pyspark.sql import SparkSession

    # the executors' Python must be the driver's (the project's .venv), wherever the job was launched
    os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
    spark = (
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
    threading.Thread(target=_log_progress, args=(spark.sparkContext, threading.Event(), progress_seconds),
                     daemon=True, name="spark-progress").start()
    return spark
