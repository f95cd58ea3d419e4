"""Run recsys_nightly once through Airflow itself (`airflow dags test`: a real DagRun, SQLite metadata)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from jobs import TASKS
from recsys_cli.live import watch
from recsys_core.config import (
    DEFAULT_AIRFLOW_HOME,
    DEFAULT_CONFIG_PATH,
    DEFAULT_DATA_DIR,
    DEFAULT_WORK_DIR,
    PROJECT_ROOT,
    SparkConfig,
    load_config,
)
from recsys_core.io import layout
from recsys_core.step_runner import settings_lines

DAG_ID = "recsys_nightly"
SPARK_CONN_ENV = "AIRFLOW_CONN_SPARK_DEFAULT"


def spark_connection(master: str) -> str:
    """The connection spark_default as Airflow reads it from AIRFLOW_CONN_SPARK_DEFAULT (JSON). The Spark
    provider's hook takes a host holding "://" or given without a port as the whole master URL, so
    local[*], yarn and spark://host:7077 all reach spark-submit's --master unchanged."""
    return json.dumps({"conn_type": "spark", "host": master})


def airflow_env(home: Path, spark_master: str = SparkConfig.master) -> dict[str, str]:
    """The environment of the Airflow commands; spark_default points at spark_master unless the
    environment already defines AIRFLOW_CONN_SPARK_DEFAULT."""
    env = dict(os.environ)
    env.setdefault(SPARK_CONN_ENV, spark_connection(spark_master))
    # a local Airflow's deployment: the sample data, the project's data folder and config, unless set
    env.setdefault("RECSYS_DATA_DIR", str(DEFAULT_DATA_DIR))
    env.setdefault("RECSYS_WORK_DIR", str(DEFAULT_WORK_DIR))
    env.setdefault("RECSYS_CONFIG", str(DEFAULT_CONFIG_PATH))
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(PROJECT_ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"),
        TF_CPP_MIN_LOG_LEVEL="2",  # TensorFlow's C++ logs errors only
        # Airflow starts its own components as `airflow ...`: the project's environment comes first
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    )
    return env


def _airflow(args: list[str], env: dict, log_file) -> int:
    airflow = str(Path(sys.executable).with_name("airflow"))
    return subprocess.run(
        [airflow, *args], env=env, stdout=log_file, stderr=subprocess.STDOUT
    ).returncode


def ensure_metadata_db(home: Path, env: dict, log_file) -> None:
    marker = home / ".migrated"
    if marker.exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    if _airflow(["db", "migrate"], env, log_file) != 0:
        raise SystemExit(f"airflow db migrate failed; see {log_file.name}")
    marker.touch()


def run_dag(
    ds: str,
    conf: dict,
    work_dir: Path,
    home: Path = DEFAULT_AIRFLOW_HOME,
    deployment: dict[str, str] | None = None,
) -> int:
    """Trigger one DagRun for ds with the trigger's `conf`, the Airflow processes holding the
    `deployment`'s variables (RECSYS_DATA_DIR, ...: what a worker of a deployment holds); print each
    step's time and rows, return 0 only if every task succeeded."""
    deployment = deployment or {}
    # the Spark tasks' master: the run config's spark.master, unless AIRFLOW_CONN_SPARK_DEFAULT is set
    config = load_config(
        deployment.get("RECSYS_CONFIG") or None,
        settings_lines(deployment.get("RECSYS_DEPLOYMENT_SETTINGS")),
    )
    env = {**airflow_env(home, config.spark.master), **deployment}
    steps_dir = layout.WorkDir(work_dir).step_records(ds)
    shutil.rmtree(steps_dir, ignore_errors=True)  # so the summary shows this run's steps only
    log_path = home / "runs" / f"{DAG_ID}-{ds}-{int(time.time())}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env["RECSYS_RUN_LOG"] = str(log_path)  # failure alerts point here
    print(f"running {DAG_ID} for ds={ds} through Airflow (log: {log_path})", flush=True)
    started = time.time()
    with open(log_path, "w") as log_file:
        ensure_metadata_db(home, env, log_file)
        airflow = str(Path(sys.executable).with_name("airflow"))
        args = [airflow, "dags", "test", DAG_ID, ds, "--conf", json.dumps(conf)]
        run = subprocess.Popen(args, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        code = watch(run, steps_dir, TASKS, f"{DAG_ID} ds={ds}", live=sys.stdout.isatty())
    print_summary(steps_dir)
    print(
        f"{'succeeded' if code == 0 else 'FAILED'} in {time.time() - started:.0f}s; Airflow log: {log_path}"
    )
    return 0 if code == 0 else 1


def _rows(record: dict) -> str:
    shown = dict(record.get("rows_out") or {})
    if (
        record.get("step") == "train_towers" and "model_version" in record
    ):  # a model, not rows: which, how good
        shown.update(model=record["model_version"], mode=record.get("model_mode"))
        shown.update(
            {
                k: round(v, 3)
                for k, v in record.items()
                if k in ("val_rmse", "val_log_loss", "val_accuracy")
            }
        )
    if (
        record.get("step") == "gate_model" and "blessed" in record
    ):  # the gate: which model serves, and why
        ndcg = record.get("candidate_ndcg@10")
        shown.update(
            serving=record["model_version"],
            new_model="blessed" if record["blessed"] else "REJECTED",
            **({"ndcg@10": round(ndcg, 4)} if ndcg is not None else {}),
        )
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def print_summary(steps_dir: Path) -> None:
    print(f"{'step':<22}{'status':<10}{'seconds':>9}  rows out")
    for step in TASKS:
        path = steps_dir / f"{step}.json"
        if not path.exists():
            print(f"{step:<22}{'not run':<10}")
            continue
        record = json.loads(path.read_text())
        print(f"{step:<22}{record['status']:<10}{record['seconds']:>9.1f}  {_rows(record)}")
        if record["status"] != "success":
            print(f"    error: {record.get('error', '?')}")
        elif record.get("blessed") is False:
            print(f"    {record['reason']}")
