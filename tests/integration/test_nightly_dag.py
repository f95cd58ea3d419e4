"""The whole nightly DAG, run through Airflow on a small generated dataset: a backfill, a rerun on a
Spark standalone cluster, a damaged feed, forbidden triggers (MovieLens: test_movielens_dag.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import SPARK_STEPS, STEPS
from recsys_cli.airflow_run import SPARK_CONN_ENV
from recsys_cli.spark_cluster import standalone_cluster
from recsys_core.config import load_config
from recsys_core.datasets.generate import generate_dataset
from tests.damaged_inputs import DAMAGE_ERRORS, damaged_copy
from tests.integration.dag_runs import (
    FAST,
    RUN_TIMEOUT,
    assert_invariants,
    checksum,
    recsys_run,
    table_rows,
)
from tests.paths import SHIPPED_CONFIG as PROJECT_CONFIG
from tests.recsys_airflow.test_notify import Receiver

DS = "2026-01-31"
EARLIER_DS = "2026-01-30"
NEW_ITEMS = [
    900_001,
    900_002,
]  # catalogue items without interactions, ids far above the generator's


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """The generator's tables plus NEW_ITEMS: catalogue items nobody has interacted with yet."""
    out = tmp_path_factory.mktemp("small")
    generate_dataset(out, users=300, items=150, interactions=6000, seed=11)
    items = pq.read_table(out / "items")
    arrivals = items.slice(0, len(NEW_ITEMS)).set_column(
        0, "item_id", pa.array(NEW_ITEMS, items.schema.field("item_id").type)
    )
    pq.write_table(arrivals.cast(items.schema), out / "items" / "part-new-arrivals.parquet")
    return out


# the password of this module's warehouse URL: no file or table any run writes may hold it (the local
# server trusts 127.0.0.1, so any password connects)
CANARY = "Canary-5c1e7b"
ALERTS: list[dict] = []  # what the failure callback posted during this module's runs


@pytest.fixture(scope="module")
def warehouse(module_pg_url):
    """The runs of this module publish into PostgreSQL, as a deployment does (the default DuckDB file
    is what the cluster, services and MovieLens runs publish into), with a password in the URL, given
    to every run in the environment (RECSYS_WAREHOUSE_URL), as a deployment gives it."""
    return module_pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{CANARY}@", 1)


def with_warehouse(url: str, **more: str) -> dict:
    return {"RECSYS_WAREHOUSE_URL": url, **more}


@pytest.fixture(scope="module")
def first_run(small_data, airflow_home, tmp_path_factory, warehouse):
    """`recsys backfill` of two dates in reverse order: the newer ds is published first."""
    work = tmp_path_factory.mktemp("work")
    cmd = [sys.executable, "-m", "recsys_cli.main", "backfill", "--data", str(small_data)]
    cmd += ["--start", EARLIER_DS, "--end", DS, "--reverse", "--work", str(work)]
    cmd += ["--airflow-home", str(airflow_home), *FAST]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=2 * RUN_TIMEOUT,
        env={**os.environ, **with_warehouse(warehouse)},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return work, proc


def test_backfill_prints_every_step_of_every_run_with_its_rows(first_run):
    _, proc = first_run
    assert "backfill: 2 of 2 ds published" in proc.stdout
    lines = proc.stdout.splitlines()
    for step in STEPS:
        assert sum(line.startswith(step) and "success" in line for line in lines) == 2, step
    assert "recommendations=" in proc.stdout and proc.stdout.count("succeeded") == 2
    # while each run went on: every task as it ended, the longer ones as they started too (a task
    # of under a second may start and end between two looks, as may a phase of one: where training
    # is, a second on this data, is tested in test_softmax_towers.py)
    for step in STEPS:
        assert sum(f" {step}: success in " in line for line in lines) == 2, step
    for step in ("build_features", "train_towers", "rank_candidates"):
        assert sum(line.endswith(f" {step}: started") for line in lines) == 2, step


def test_every_ds_of_the_backfill_holds_every_invariant_and_latest_is_the_newest(
    first_run, small_data, warehouse
):
    for ds in (EARLIER_DS, DS):
        assert_invariants(warehouse, small_data, ds)
    # EARLIER_DS was published last, yet the latest view shows the newest ds
    assert table_rows(warehouse, "SELECT DISTINCT ds::TEXT FROM recommendations_latest") == [(DS,)]


def test_item_neighbors_published_k_per_item_without_self(first_run, small_data, warehouse):
    rows = table_rows(
        warehouse,
        "SELECT item_id, count(*), sum((item_id = neighbor_id)::INT), min(distance) "
        "FROM item_neighbors WHERE ds = ?::DATE GROUP BY item_id",
        [DS],
    )
    assert len(rows) == pq.read_table(small_data / "items").num_rows
    k = load_config(PROJECT_CONFIG).similarity.k  # what the runs used: the project's config file
    assert all(r[1] == k and r[2] == 0 and r[3] >= 0 for r in rows)


def test_new_arrivals_reach_every_list_with_reason_new(first_run, warehouse):
    """Items nobody has interacted with reach every user: where their score does not place one in the
    top 20, ranking.new_slots keeps the last place for the user's best; every arrival shown says
    "new" among its reasons, whichever source also found it."""
    rows = table_rows(
        warehouse,
        "SELECT user_id, rank, item_id, reason FROM recommendations_latest "
        f"WHERE item_id IN ({', '.join(map(str, NEW_ITEMS))})",
    )
    users = table_rows(warehouse, "SELECT count(DISTINCT user_id) FROM recommendations_latest")
    assert len({r[0] for r in rows}) == users[0][0]  # every user has one
    assert all("new" in r[3].split("; ") for r in rows), rows[:10]
    # most users' arrival sits in the kept last place; some score one higher by content alone
    assert sum(r[1] == 20 for r in rows) > len(rows) / 2 and {r[1] for r in rows} <= set(
        range(1, 21)
    )


def test_cold_start_users_get_recommendations(first_run, small_data, warehouse):
    users = set(pq.read_table(small_data / "users").column("user_id").to_pylist())
    active = set(pq.read_table(small_data / "interactions").column("user_id").to_pylist())
    cold = users - active
    assert cold, "the generator should leave some users without interactions"
    got = table_rows(warehouse, "SELECT DISTINCT user_id FROM recommendations_latest")
    assert cold <= {r[0] for r in got}


def test_a_rerun_of_ds_on_the_spark_cluster_replaces_it_with_the_same_rows(
    first_run, small_data, airflow_home, warehouse, tmp_path
):
    """The rerun of DS runs its Spark steps on a standalone cluster (master and worker on 127.0.0.1):
    AIRFLOW_CONN_SPARK_DEFAULT points there, as in docker-compose.yml, while the config keeps
    spark.master = local[*], so no code or config changes. Each Spark step is an application whose
    executor the worker launched, and the rerun replaces DS with the rows the local run published: no
    duplicates, and the same inputs, config and seed give the same recommendations on either master.
    (Two runs of different dates publishing at once: the publishers' lock in
    tests/recsys_core/publish/test_warehouse.py::test_two_publishers_at_once_both_publish_whole.)"""
    work, _ = first_run
    db = warehouse
    before = checksum(db, DS)
    with standalone_cluster(tmp_path / "spark") as cluster:
        done = recsys_run(
            small_data,
            work,
            airflow_home,
            DS,
            env=with_warehouse(db, **{SPARK_CONN_ENV: cluster.url}),
        )
        worker_log = cluster.worker_log.read_text()
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-2000:])
    for step in SPARK_STEPS:
        assert f"for recsys-{step}" in worker_log, (step, worker_log[-3000:])
    assert worker_log.count("Asked to launch executor") >= len(SPARK_STEPS)
    after = checksum(db, DS)
    assert after[0] == before[0], "a rerun must not duplicate rows"
    assert after == before, "same inputs, config and seed must give the same recommendations"
    dupes = table_rows(
        db,
        "SELECT count(*) FROM (SELECT ds, user_id, rank FROM recommendations "
        "GROUP BY ds, user_id, rank HAVING count(*) > 1) AS repeated",
    )
    assert dupes == [(0,)]
    sums = table_rows(
        db,
        "SELECT checksum FROM publish_log WHERE ds = ?::DATE AND table_name = 'recommendations'",
        [DS],
    )
    assert len(sums) == 2 and sums[0] == sums[1], (
        "two runs on the same inputs must publish identical rows"
    )
    assert table_rows(db, "SELECT count(DISTINCT ds) FROM recommendations") == [(2,)]


def test_bad_input_fails_at_validation_alerts_and_leaves_the_warehouse(
    first_run, small_data, airflow_home, tmp_path, warehouse
):
    """One damaged feed through Airflow: the task fails without retries, nothing downstream runs, the
    alert names the task, ds and error, and the published ds is untouched. Every kind of damage is named
    by the job itself in tests/jobs/test_validate_inputs.py."""
    work, _ = first_run
    db = warehouse
    before = checksum(db, DS)
    data = damaged_copy(small_data, tmp_path, "missing_column")
    expected = DAMAGE_ERRORS["missing_column"]
    alerts = Receiver()
    try:
        proc = recsys_run(
            data,
            work,
            airflow_home,
            DS,
            env=with_warehouse(db, RECSYS_ALERT_WEBHOOK=alerts.url),
        )
    finally:
        alerts.close()
    ALERTS.extend(alerts.received)
    assert proc.returncode != 0
    out = proc.stdout
    assert "validate_inputs       failed" in out, out[-3000:]
    assert "build_features        not run" in out
    assert expected in out and "interactions" in out, out[-3000:]
    assert checksum(db, DS) == before
    # the failure callback posted one summary naming the task, the ds and the job's own error
    assert len(alerts.received) == 1, alerts.received
    alert = alerts.received[0]
    assert (alert["task_id"], alert["ds"]) == ("validate_inputs", DS) and expected in alert["error"]
    assert alert["log"].endswith(".log") and "runs" in alert["log"]


@pytest.mark.parametrize(
    "conf, why",
    [
        ({"top_n": 0}, "ParamValidationError: Invalid input for param top_n"),
        # a future ds passes the schema (its bound moves every day) and the first task refuses it
        ({"ds": "2099-12-31"}, "ds 2099-12-31 lies after"),
    ],
)
def test_a_forbidden_trigger_is_refused_before_any_step_runs(airflow_home, tmp_path, conf, why):
    """Through `airflow dags test`; every param's bounds are checked against the DAG in
    tests/dags/test_dag_params.py, and the task-level refusals in tests/recsys_airflow."""
    import json
    import subprocess
    import sys

    from recsys_cli.airflow_run import airflow_env, ensure_metadata_db

    env = {**airflow_env(airflow_home), "RECSYS_WORK_DIR": str(tmp_path / "work")}
    with open(tmp_path / "migrate.log", "w") as log:
        ensure_metadata_db(airflow_home, env, log)
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("airflow")),
            "dags",
            "test",
            "recsys_nightly",
            DS,
            "--conf",
            json.dumps(conf),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert why in proc.stdout + proc.stderr
    assert not (tmp_path / "work").exists(), "a step ran although the trigger was refused"


def test_each_publish_emits_the_recommendations_asset_with_its_ds_and_rows(
    first_run, airflow_home, warehouse
):
    """Airflow recorded an event of the Asset recsys_recommendations for each ds the backfill
    published, whose extra names the ds and the rows the warehouse holds for it: what a DAG scheduled
    on the Asset (dags/recsys_recommendations_consumer.py) reads."""
    import sqlite3

    with sqlite3.connect(airflow_home / "airflow.db") as db:
        extras = db.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.name = 'recsys_recommendations'"
        ).fetchall()
    events = {json.loads(extra)["ds"]: json.loads(extra)["rows"] for (extra,) in extras}
    assert {EARLIER_DS, DS} <= set(events), extras
    for ds in (EARLIER_DS, DS):
        held = table_rows(
            warehouse, "SELECT count(*) FROM recommendations WHERE ds = ?::DATE", [ds]
        )
        assert events[ds]["recommendations"] == held[0][0] > 0


def test_run_report_is_in_the_warehouse_and_as_html(first_run, warehouse):
    work, proc = first_run
    assert any(line.startswith("report") and "success" in line for line in proc.stdout.splitlines())
    steps = table_rows(
        warehouse,
        "SELECT step, status, seconds, rows_out, run_id FROM run_report WHERE ds = ?::DATE",
        [DS],
    )
    # the backfill's run of ds, and the rerun when that test ran before this one
    for run_id in {s[4] for s in steps}:
        assert sorted(s[0] for s in steps if s[4] == run_id) == sorted(STEPS)
    assert all(s[1] == "success" and s[2] >= 0 for s in steps)
    assert any('"recommendations": ' in s[3] for s in steps)
    out = subprocess.run(
        [sys.executable, "-m", "recsys_cli.main", "report", "--work", str(work)],
        capture_output=True,
        text=True,
    ).stdout.strip()
    page = open(out).read()
    # the training loss, the score distribution; the gate's NDCG@10, the rows published and the
    # step times across the nights so far
    assert out.endswith(f"ds={DS}/report.html") and page.count("data:image/png;base64,") == 5
    assert 'alt="model gate across nights"' in page and 'alt="rows published across nights"' in page
    assert "Data Docs" in page and all(step in page for step in STEPS)


def test_no_file_table_alert_or_log_of_the_runs_holds_the_warehouse_password(
    first_run, airflow_home, warehouse, tmp_path
):
    """Every run of this module (the backfill, the reruns, the failed run and its alert) had the
    password in its environment. Then one more step fails on purpose where the password matters most:
    publish, pointed at a port where no server listens. Nothing any of them wrote holds it: the lake
    (step records, reports), Airflow's logs and run logs, the alerts, and every row of every table of
    the warehouse."""
    import psycopg

    from recsys_core.redact import redacted

    work, proc = first_run
    refused = warehouse.replace("@127.0.0.1:5432/", "@127.0.0.1:9/", 1)
    failed = subprocess.run(
        [sys.executable, "-m", "jobs.publish", "--ds", DS, "--work", str(work)]
        + ["--set", "warehouse.retries=0"],  # refused for good here: fail at the first attempt
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RECSYS_WAREHOUSE_URL": refused},
    )
    assert failed.returncode != 0
    record = json.loads((work / "lake" / "_steps" / f"ds={DS}" / "publish.json").read_text())
    assert redacted(refused) in record["error"]  # the error still says which warehouse

    texts = {
        "backfill output": proc.stdout + proc.stderr,
        "failed publish": failed.stdout + failed.stderr,
    }
    texts["alerts"] = json.dumps(ALERTS)
    for folder in (work, airflow_home):
        for path in folder.rglob("*"):
            if path.is_file():
                texts[str(path)] = path.read_bytes().decode("utf-8", "replace")
    with psycopg.connect(warehouse, autocommit=True) as con:
        schema = con.execute("SELECT current_schema()").fetchone()[0]
        tables = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                [schema],
            ).fetchall()
        ]
        assert "run_report" in tables and "recommendations" in tables
        for table in tables:
            rows = con.execute(f'SELECT t::text FROM "{schema}"."{table}" AS t').fetchall()
            texts[f"table {table}"] = "\n".join(r[0] for r in rows)
    assert ALERTS, "the failed run posted no alert"
    leaks = [where for where, text in texts.items() if CANARY in text]
    assert not leaks, leaks
