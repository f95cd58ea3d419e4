"""Start the real Airflow components (api-server, scheduler, dag-processor, triggerer) on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

from recsys_cli.airflow_run import spark_connection
from tests.paths import PROJECT

COMPONENTS = (["api-server"], ["scheduler"], ["dag-processor"], ["triggerer"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    def __init__(self, base: str):
        self.base = base

    def call(self, method: str, path: str, body: dict | None = None):
        req = urllib.request.Request(
            f"{self.base}/api/v2{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def wait(self, path: str, seconds: float):
        deadline = time.time() + seconds
        while True:
            try:
                return self.call("GET", path)
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(2)


@contextmanager
def airflow_services(pg_server_url: str, home: Path, extra_env: dict):
    """Yield an Api client for a fresh metadata database; every process is stopped on the way out."""
    import psycopg

    db = f"airflow_it_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {db}")
    server = pg_server_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    port = free_port()
    env = {
        "AIRFLOW_CONN_SPARK_DEFAULT": spark_connection(
            "local[*]"
        ),  # the Spark tasks' master, unless set
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{server}/{db}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
        **extra_env,
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    procs = []
    try:
        subprocess.run(
            [airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=600
        )
        for args in COMPONENTS:
            log = open(home / f"{args[0]}.log", "w")
            extra = ["--port", str(port)] if args[0] == "api-server" else []
            procs.append(
                subprocess.Popen(
                    [airflow, *args, *extra],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        api = Api(f"http://127.0.0.1:{port}")
        api.wait("/monitor/health", 180)
        yield api
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        with psycopg.connect(pg_server_url, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
