"""Passing faults of the database are retried, lasting ones are named: a PostgreSQL server of the test's
own is stopped in the middle of a publish and started again, and the publish lands once, whole."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

from recsys_core.errors import ConfigError, TransientError
from recsys_core.publish.duckdb_store import DuckDBWarehouse
from recsys_core.publish.warehouse import open_warehouse, retry_waits
from tests.recsys_core.publish.test_warehouse import rows, tables

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
USERS = 400_000  # rows of recommendations: a COPY long enough to stop the server in the middle


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnServer:
    """A PostgreSQL cluster in a temporary folder on a free port, run as the user `postgres` when the
    test runs as root (initdb refuses root)."""

    def __init__(self, folder: Path):
        self.bin = PG_BIN[-1]
        self.data, self.port = folder / "pgdata", free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        folder.chmod(0o777)  # the server's user writes its cluster in it
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        opts = f"-p {self.port} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-o", opts, "-w", "start", "-l", str(self.data / "log")
        )

    def stop(self) -> None:  # as a crash or an operator's fast restart would: connections drop
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture
def server():
    if not PG_BIN or (os.geteuid() == 0 and not shutil.which("runuser")):
        if os.environ.get("CI"):
            pytest.fail("the PostgreSQL server binaries are part of this machine kind")
        pytest.skip("no PostgreSQL binaries to start a server of the test's own")
    # not under pytest's tmp_path: its folders are private to this user, and the server runs as another
    folder = Path(tempfile.mkdtemp(prefix="recsys-pg-"))
    try:
        own = OwnServer(folder)
        own.start()
        yield own
        with contextlib.suppress(subprocess.CalledProcessError):
            own.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def staging_started(url: str) -> bool:
    with contextlib.suppress(psycopg.Error), psycopg.connect(url, connect_timeout=2) as con:
        found = con.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY stg_recommendations%'"
        ).fetchone()
        return bool(found and found[0])
    return False


def test_a_server_stopped_mid_publish_and_started_again_gets_the_publish_once_whole(server, caplog):
    """The server is stopped while the COPY into staging runs and started 3 s later; the publish
    retries (its waits 1, 2, 4, ... s) and lands: every row once, one publish_log entry per table."""
    wh = open_warehouse(server.url, retries=6)
    data = tables(list(range(1, USERS + 1)), [1, 2, 3])
    stopped = threading.Event()

    def outage():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not staging_started(server.url):
            time.sleep(0.05)
        server.stop()
        stopped.set()
        time.sleep(3)
        server.start()

    chaos = threading.Thread(target=outage)
    chaos.start()
    caplog.set_level(logging.WARNING, logger="recsys_core.publish.warehouse")
    try:
        result = wh.publish("2026-01-31", "r1", data, "v1")
    finally:
        chaos.join()
    assert stopped.is_set()
    assert result.status == "published"
    assert "publish of ds=2026-01-31, attempt 1 of 7" in caplog.text  # it did hit the outage
    assert rows(wh, "SELECT count(*), count(DISTINCT user_id) FROM recommendations") == [
        (USERS, USERS)
    ]
    assert rows(wh, "SELECT table_name, rows FROM publish_log ORDER BY table_name") == [
        ("item_neighbors", 3),
        ("items", 3),
        ("recommendations", USERS),
    ]
    # no staging table of the failed attempt is left behind
    assert rows(wh, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'stg_%'") == [(0,)]


def test_a_server_that_stays_down_is_a_transient_error_after_the_retries(server):
    server.stop()
    wh = open_warehouse(server.url, retries=2)
    started = time.monotonic()
    with pytest.raises(TransientError, match="cannot connect to warehouse"):
        wh.publish("2026-01-31", "r1", tables([1], [1]), "v1")
    assert time.monotonic() - started >= sum(retry_waits(2))  # it waited 1 s and 2 s


@pytest.mark.parametrize(
    "url_of",
    [
        lambda u: u.rsplit("/", 1)[0] + "/no_such_database",
        lambda u: u.replace("//postgres@", "//nobody@"),
    ],
)
def test_a_missing_database_or_role_is_a_config_error_at_once(server, url_of):
    wh = open_warehouse(url_of(server.url), retries=3)
    started = time.monotonic()
    with pytest.raises(ConfigError, match="refused the account or database"):
        wh.publish("2026-01-31", "r1", tables([1], [1]), "v1")
    assert time.monotonic() - started < 1.0  # not retried: waiting cannot create a database


HOLD_LOCK = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(30)
"""


def test_a_duckdb_file_locked_past_the_wait_is_a_transient_error(tmp_path, monkeypatch):
    import recsys_core.publish.duckdb_store as store

    path = tmp_path / "wh.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        monkeypatch.setattr(store, "LOCK_WAIT_SECONDS", 1)
        with pytest.raises(TransientError, match="still locked by another process"):
            DuckDBWarehouse(f"duckdb://{path}").connect()
    finally:
        holder.kill()
        holder.wait()
