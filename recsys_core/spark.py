"""The Spark session every Spark step uses: spark-submit's settings when it launched the job (the DAG),
else SparkConfig's (local[*] by default)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from recsys_core import progress
from recsys_core.config import SparkConfig

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 15.0  # between progress lines: a long stage shows, the task log does not flood
NOTE_SECONDS = 2.0  # between looks at the active stages for the step's live progress


def _log_progress(sc, stop: threading.Event, every: float) -> None:
    """Note the active Spark stages and their task counts as the step's progress (every
    NOTE_SECONDS) and log them (every `every`), so a task log shows where a long job is."""
    tracker = sc.statusTracker()
    logged = time.monotonic()
    while not stop.wait(min(every, NOTE_SECONDS)):
        stages = []
        for stage_id in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage_id)
            if info is not None:
                stages.append(
                    f"Spark stage {stage_id} ({info.name.split(' at ')[0]}): "
                    f"{info.numCompletedTasks}/{info.numTasks} tasks done, "
                    f"{info.numActiveTasks} running"
                )
        if stages:
            progress.note("; ".join(stages))
            if time.monotonic() - logged >= every:
                logged = time.monotonic()
                for stage in stages:
                    log.info("%s", stage)


def launched_by_spark_submit() -> bool:
    """True in a driver that spark-submit started: its PythonRunner hands the JVM it already runs to
    Python through PYSPARK_GATEWAY_PORT (the master and driver memory are then already set)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_session(cfg: SparkConfig, app: str, progress_seconds: float = PROGRESS_SECONDS):
    """The session of a Spark step. Under spark-submit (the DAG) the name, master, deploy mode and
    resources are spark-submit's, which the builder would override; otherwise they come from cfg."""
    from pyspark.sql import SparkSession

    # the executors' Python must be the driver's (the project's .venv), wherever the job was launched
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    if not launched_by_spark_submit():
        builder = (
            builder.appName(app).master(cfg.master).config("spark.driver.memory", cfg.driver_memory)
        )
        for key, value in (
            ("spark.executor.memory", cfg.executor_memory),
            ("spark.executor.cores", cfg.executor_cores),
            ("spark.cores.max", cfg.total_executor_cores),
        ):
            if value:  # empty or 0: not set
                builder = builder.config(key, str(value))
    spark = (
        builder.config("spark.sql.shuffle.partitions", str(cfg.shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    threading.Thread(
        target=_log_progress,
        args=(spark.sparkContext, threading.Event(), progress_seconds),
        daemon=True,
        name="spark-progress",
    ).start()
    return spark
