"""Failure alerts: a short summary of a failed task posted to a webhook, or logged when none is set."""

from __future__ import annotations

import json
import logging
import os
import urllib.request

log = logging.getLogger(__name__)
WEBHOOK_ENV = "RECSYS_ALERT_WEBHOOK"
ERROR_CHARS = 4000  # of the error in an alert: a readable message; the whole error is in the log
# an unreachable webhook must not hold the failure callback (and the task) for long
WEBHOOK_TIMEOUT_SECONDS = 10


def failure_summary(context) -> dict:
    ti = context.get("ti") or context.get("task_instance")
    base = os.environ.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or os.path.join(
        os.environ.get("AIRFLOW_HOME", "~/airflow"), "logs"
    )
    # `recsys run` captures the whole run in one file; a scheduler writes Airflow's per-attempt file
    log_path = os.environ.get("RECSYS_RUN_LOG") or os.path.join(
        base,
        f"dag_id={ti.dag_id}",
        f"run_id={ti.run_id}",
        f"task_id={ti.task_id}",
        f"attempt={ti.try_number}.log",
    )
    return {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "ds": (context.get("params") or {}).get("ds") or context.get("ds"),
        "run_id": ti.run_id,
        "try_number": ti.try_number,
        "error": str(context.get("exception") or "unknown error")[:ERROR_CHARS],
        "log": log_path,
    }


def notify_failure(context) -> None:
    """on_failure_callback: POST the summary as JSON to $RECSYS_ALERT_WEBHOOK, else write it to the log."""
    summary = failure_summary(context)
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        log.error("recsys task failed (set %s to post this): %s", WEBHOOK_ENV, json.dumps(summary))
        return
    request = urllib.request.Request(
        url,
        data=json.dumps(summary).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            log.info("failure alert posted to %s: HTTP %s", url, response.status)
    except OSError as exc:  # an alert that cannot be sent must not hide the task's own failure
        log.error("could not post failure alert to %s (%s): %s", url, exc, json.dumps(summary))
