"""The publish step killed or failing at its worst moments: readers never lose the previous complete ds."""

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from recsys_core.io import layout
from recsys_core.io.inputs import conform
from recsys_core.io.lake import Lake
from recsys_core.publish.warehouse import open_warehouse

DS = "2026-01-31"
USERS, ITEMS = [1, 2, 3], [10, 11, 12, 13]
SEEN = {(1, 10)}


def write_lake(work, score_shift: float, nan: bool = False, version: str = "v1"):
    """A complete lake for DS: input snapshots, neighbors and valid recommendations (every unseen item)."""
    lake = Lake(work / "lake")
    lake.write_table(
        conform("users", pa.table({"user_id": USERS, "country": ["US"] * 3})),
        layout.input_dataset("users"),
        DS,
    )
    lake.write_table(
        conform(
            "items",
            pa.table(
                {
                    "item_id": ITEMS,
                    "title": [f"t{i}" for i in ITEMS],
                    "year": [2000] * 4,
                    "genres": [["Drama"]] * 4,
                }
            ),
        ),
        layout.input_dataset("items"),
        DS,
    )
    lake.write_table(
        conform(
            "interactions",
            pa.table({"user_id": [1], "item_id": [10], "rating": [4.0], "timestamp": [0]}),
        ),
        layout.input_dataset("interactions"),
        DS,
    )
    rows = [(u, i) for u in USERS for i in ITEMS if (u, i) not in SEEN]
    users = np.array([r[0] for r in rows])
    rank = np.concatenate([np.arange(1, (users == u).sum() + 1) for u in USERS])
    score = np.linspace(0.9, 0.1, len(rows)) + score_shift
    if nan:
        score[0] = np.nan
    lake.write_table(
        pa.table(
            {
                "user_id": pa.array(users, pa.int64()),
                "rank": pa.array(rank, pa.int32()),
                "item_id": pa.array([r[1] for r in rows], pa.int64()),
                "score": score,
                "predicted_rating": score * 2 + 3,
                "reason": ["top_genre:Drama"] * len(rows),
                "model_version": [version] * len(rows),
                "run_id": ["x"] * len(rows),
            }
        ),
        "recommendations",
        DS,
    )
    lake.write_table(
        pa.table(
            {
                "item_id": pa.array(ITEMS, pa.int64()),
                "rank": pa.array([1] * 4, pa.int32()),
                "neighbor_id": pa.array([11, 10, 13, 12], pa.int64()),
                "distance": [0.5] * 4,
            }
        ),
        "item_neighbors",
        DS,
    )


def publish(work, url, run_id, fault=None):
    env = {**os.environ, "RECSYS_RUN_ID": run_id, "RECSYS_FAULT": fault or ""}
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.publish", "--ds", DS, "--work", str(work), "--warehouse", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    path = work / "lake" / layout.STEP_RECORDS / f"ds={DS}" / "publish.json"
    return proc.returncode, (
        json.loads(path.read_text()) if path.exists() and fault is None else None
    )


def live(url):
    wh = open_warehouse(url)
    recs = wh.query(
        "SELECT user_id, rank, item_id, score, run_id FROM recommendations ORDER BY user_id, rank"
    )
    staging = wh.query(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name LIKE 'stg_%'"
    )
    log = wh.query("SELECT run_id, table_name FROM publish_log ORDER BY run_id, table_name")
    return (
        [tuple(r) for r in recs.itertuples(index=False)],
        len(staging),
        [tuple(r) for r in log.itertuples(index=False)],
    )


@pytest.fixture(params=["duckdb", "postgres"])
def url(request, tmp_path):
    if request.param == "duckdb":
        return f"duckdb://{tmp_path}/wh.duckdb"
    return request.getfixturevalue("pg_url")


def test_killed_after_staging_leaves_the_live_table_and_a_rerun_publishes(tmp_path, url):
    write_lake(tmp_path, 0.0)
    assert publish(tmp_path, url, "r1")[0] == 0
    before, _, _ = live(url)
    write_lake(tmp_path, 0.05, version="v2")
    code, _ = publish(tmp_path, url, "r2", fault="publish_after_stage")
    assert code == -9  # SIGKILL, no clean-up ran
    rows, staged, log = live(url)
    assert rows == before and staged == 3  # old rows intact, the dead run's staging left behind
    assert {r[0] for r in log} == {"r1"}
    code, record = publish(tmp_path, url, "r2")
    rows, staged, log = live(url)
    assert code == 0 and record["publish"] == "published"
    assert {r[4] for r in rows} == {"x"} and rows != before and len(rows) == len(before)
    assert staged == 0 and {r[0] for r in log} == {"r1", "r2"}


def test_crash_after_the_switch_is_not_published_twice_on_rerun(tmp_path, url):
    write_lake(tmp_path, 0.0)
    assert publish(tmp_path, url, "r1")[0] == 0
    write_lake(tmp_path, 0.05, version="v2")
    code, _ = publish(tmp_path, url, "r2", fault="publish_after_switch")
    assert code == -9
    after_crash, staged, log = live(url)
    assert staged == 3 and log.count(("r2", "recommendations")) == 1
    code, record = publish(tmp_path, url, "r2")
    rows, staged, log = live(url)
    assert code == 0 and record["publish"] == "noop"
    assert rows == after_crash and staged == 0 and log.count(("r2", "recommendations")) == 1


def test_nan_predictions_are_never_published(tmp_path, url):
    write_lake(tmp_path, 0.0)
    assert publish(tmp_path, url, "r1")[0] == 0
    before = live(url)
    write_lake(tmp_path, 0.05, nan=True)
    code, record = publish(tmp_path, url, "r2")
    assert code == 3 and "AuditError" in record["error"] and "non-finite scores" in record["error"]
    assert live(url) == before
