"""Long Spark jobs report their active stages in the log and as the step's live progress."""

import logging
import threading
import time

import pytest

from recsys_core.spark import _log_progress

pytestmark = pytest.mark.spark


def test_active_stages_are_logged_with_task_counts(spark, caplog, monkeypatch):
    from recsys_core import progress

    noted: list[str] = []
    monkeypatch.setattr(progress, "note", lambda detail, force=False: noted.append(detail))
    stop = threading.Event()
    watcher = threading.Thread(
        target=_log_progress, args=(spark.sparkContext, stop, 0.2), daemon=True
    )
    with caplog.at_level(logging.INFO, logger="recsys_core.spark"):
        watcher.start()

        def slow(rows):
            time.sleep(1.5)
            return rows

        spark.sparkContext.parallelize(range(4), 2).map(slow).count()
        stop.set()
        watcher.join(timeout=5)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Spark stage")]
    assert lines, "no stage progress was logged while a job ran"
    assert "/2 tasks done" in lines[0]
    assert noted and noted[0].startswith("Spark stage") and "/2 tasks done" in noted[0]
