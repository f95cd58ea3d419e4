"""The whole DAG runs its Spark steps on a standalone cluster (master + worker on 127.0.0.1) when the
connection spark_default points there, and they give the same results as local[*]."""

import json
import shutil
import subprocess
import sys

import pyarrow.parquet as pq

import jobs
from recsys_core.candidates.retrieval import long_form
from recsys_core.datasets.generate import generate_dataset
from tests.integration.dag_runs import assert_invariants, duckdb_url
from tests.integration.spark_cluster import standalone_cluster

DS = "2026-01-31"
SPARK_STEPS = ("item_similarity", "retrieve_candidates")


def step(name, data, work, master, settings):
    cmd = [
        sys.executable,
        "-m",
        f"jobs.{name}",
        "--ds",
        DS,
        "--data",
        str(data),
        "--work",
        str(work),
        "--set",
        f"spark.master={master}",
        *[x for s in settings for x in ("--set", s)],
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


def table(work, dataset, keys):
    df = pq.read_table(work / "lake" / dataset / f"ds={DS}").to_pandas()
    if "reasons" in df.columns:  # retrieval's per-user rows: one row per candidate
        df = long_form(df)
        df["reasons"] = df["reasons"].map(lambda r: "; ".join(r))
    return df.sort_values(keys).reset_index(drop=True)


def test_the_dag_runs_its_spark_steps_on_the_cluster_of_spark_default_with_local_results(
    tmp_path, airflow_home, monkeypatch
):
    """One DagRun through Airflow with AIRFLOW_CONN_SPARK_DEFAULT pointing at the cluster (as in
    docker-compose.yml) while the config keeps spark.master = local[*]: no code or config change. Then the
    similarity and retrieval steps rerun on local[*] over a copy of that lake (same model and embeddings):
    only the Spark master differs, and so must nothing else."""
    from recsys_cli.airflow_run import run_dag

    data, work = tmp_path / "data", tmp_path / "work"
    generate_dataset(data, users=200, items=120, interactions=4000, seed=5)
    settings = [
        "model.epochs=1",
        "spark.shuffle_partitions=4",
        "spark.driver_memory=1g",
        "spark.executor_memory=1g",
    ]
    deployment = {
        "RECSYS_DATA_DIR": str(data),
        "RECSYS_WORK_DIR": str(work),
        "RECSYS_WAREHOUSE_URL": duckdb_url(work),
        "RECSYS_CONFIG": "",
        "RECSYS_DEPLOYMENT_SETTINGS": "\n".join(settings),
    }
    with standalone_cluster(tmp_path / "spark") as master:
        monkeypatch.setenv(
            "AIRFLOW_CONN_SPARK_DEFAULT", master
        )  # spark://127.0.0.1:<port>, a URI like compose's
        code = run_dag(DS, {}, work, airflow_home, deployment)
        worker_log = (tmp_path / "spark" / "worker.log").read_text()
    steps = {
        p.stem: json.loads(p.read_text())
        for p in (work / "lake" / "_steps" / f"ds={DS}").glob("*.json")
    }
    assert code == 0, {k: v.get("error") for k, v in steps.items() if v["status"] != "success"}
    for (
        step_name
    ) in jobs.SPARK_STEPS:  # each Spark step was an application whose executor the worker launched
        assert f"for recsys-{step_name}" in worker_log, (step_name, worker_log[-3000:])
    assert worker_log.count("Asked to launch executor") >= len(jobs.SPARK_STEPS)
    assert_invariants(duckdb_url(work), data, DS)

    local = tmp_path / "local"
    shutil.copytree(work, local)
    for name in SPARK_STEPS:
        step(name, data, local, "local[*]", settings)
    for dataset, keys in (
        ("item_neighbors", ["item_id", "rank"]),
        ("candidates", ["user_id", "item_id"]),
    ):
        a, b = table(local, dataset, keys), table(work, dataset, keys)
        assert len(a) > 0
        assert a.equals(b), dataset
