"""The failure callback posts a summary to a webhook (a real local HTTP receiver) or logs it."""

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from recsys_airflow.notify import notify_failure


class Receiver:
    """An HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def context():
    ti = SimpleNamespace(
        dag_id="recsys_nightly", task_id="validate_inputs", run_id="manual__1", try_number=1
    )
    return {"ti": ti, "ds": "2026-01-31", "exception": ValueError("input table 'users' not found")}


def test_summary_is_posted_to_the_webhook(receiver, monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_ALERT_WEBHOOK", receiver.url)
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path))
    monkeypatch.delenv("RECSYS_RUN_LOG", raising=False)
    notify_failure(context())
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert (got["dag_id"], got["task_id"], got["ds"]) == (
        "recsys_nightly",
        "validate_inputs",
        "2026-01-31",
    )
    assert "input table 'users' not found" in got["error"]
    assert got["log"] == str(
        tmp_path
        / "dag_id=recsys_nightly"
        / "run_id=manual__1"
        / "task_id=validate_inputs"
        / "attempt=1.log"
    )


def test_without_a_webhook_the_summary_goes_to_the_log(monkeypatch, caplog):
    monkeypatch.delenv("RECSYS_ALERT_WEBHOOK", raising=False)
    with caplog.at_level(logging.ERROR):
        notify_failure(context())
    assert "recsys task failed" in caplog.text and "validate_inputs" in caplog.text


def test_an_unreachable_webhook_is_logged_not_raised(monkeypatch, caplog):
    monkeypatch.setenv("RECSYS_ALERT_WEBHOOK", "http://127.0.0.1:9/none")  # discard port: refused
    with caplog.at_level(logging.ERROR):
        notify_failure(context())
    assert "could not post failure alert" in caplog.text and "input table 'users'" in caplog.text
