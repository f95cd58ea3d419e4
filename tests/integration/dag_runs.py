"""Running the real DAG through `recsys run`, and reading and checking the warehouse it wrote."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

FAST = ["--set", "model.epochs=3", "--set", "spark.shuffle_partitions=4"]
RUN_TIMEOUT = 1800  # seconds a whole DagRun of the small data may take on 2 busy cores


def start_recsys_run(
    data: Path, work: Path, home: Path, ds: str, *extra: str, env: dict | None = None
) -> subprocess.Popen:
    """`recsys run` for ds in a process of its own; its output is read by finish()."""
    cmd = [sys.executable, "-m", "recsys_cli.main", "run", "--data", str(data), "--ds", ds]
    cmd += ["--work", str(work), "--airflow-home", str(home), *FAST, *extra]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=RUN_TIMEOUT)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def recsys_run(data: Path, work: Path, home: Path, ds: str, *extra: str, env: dict | None = None):
    return finish(start_recsys_run(data, work, home, ds, *extra, env=env))


def table_rows(url: str, sql: str, params=()) -> list[tuple]:
    """Rows of a query against a warehouse URL (DuckDB or PostgreSQL)."""
    from recsys_core.publish.warehouse import open_warehouse

    df = open_warehouse(url).query(sql, list(params))
    return [tuple(r) for r in df.itertuples(index=False)]


def duckdb_url(work: Path) -> str:
    return f"duckdb://{work / 'warehouse.duckdb'}"


def checksum(url: str, ds: str) -> tuple[int, str]:
    """Row count and an order-insensitive digest of a ds partition of recommendations."""
    rows = table_rows(
        url,
        "SELECT user_id, rank, item_id, round(score::NUMERIC, 5), reason FROM recommendations "
        "WHERE ds = ?::DATE ORDER BY user_id, rank",
        [ds],
    )
    return len(rows), hashlib.sha256(repr([tuple(map(str, r)) for r in rows]).encode()).hexdigest()


def assert_invariants(url: str, data: Path, ds: str, top_n: int = 20) -> None:
    """The invariants every published ds must hold, computed independently from the input files."""
    users = pq.read_table(data / "users").column("user_id").to_numpy()
    items = set(pq.read_table(data / "items").column("item_id").to_pylist())
    inter = pq.read_table(data / "interactions", columns=["user_id", "item_id"]).to_pandas()
    seen = inter[inter.item_id.isin(items)].groupby("user_id").item_id.apply(set).to_dict()
    rows = table_rows(
        url,
        "SELECT user_id, rank, item_id, score, predicted_rating, reason FROM recommendations "
        "WHERE ds = ?::DATE",
        [ds],
    )
    assert rows, f"no recommendations for ds={ds}"
    by_user: dict[int, list] = {}
    for r in rows:
        by_user.setdefault(r[0], []).append(r)
    for user in users:
        got = by_user.get(int(user), [])
        watched = seen.get(int(user), set())
        assert len(got) == min(top_n, len(items) - len(watched)), f"user {user}: {len(got)} rows"
        assert sorted(r[1] for r in got) == list(range(1, len(got) + 1)), f"user {user}: ranks"
        assert not {r[2] for r in got} & watched, f"user {user}: recommended an item already seen"
        assert len({r[2] for r in got}) == len(got), f"user {user}: duplicate items"
    assert {r[2] for r in rows} <= items, "recommended an item outside the catalogue"
    assert set(by_user) <= {int(u) for u in users}, "recommendations for an unknown user"
    assert (
        np.isfinite([float(r[3]) for r in rows]).all()
        and np.isfinite([float(r[4]) for r in rows]).all()
    )
    assert all(r[5] for r in rows), "a recommendation without a reason"
