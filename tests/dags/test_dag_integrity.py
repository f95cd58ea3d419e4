"""The DAG loads without a database or connection, runs the steps in order, and stays light to parse."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import PROJECT

SPARK_STEPS = ["build_features", "item_similarity", "retrieve_candidates", "rank_candidates"]
EXPECTED_ORDER = [
    "validate_inputs",
    "build_features",
    "validate_features",
    "train_towers",
    "gate_model",
    "embed_items",
    "item_similarity",
    "retrieve_candidates",
    "rank_candidates",
    "publish",
]
HEAVY = ["tensorflow", "keras", "pyspark", "great_expectations", "duckdb", "pandas", "numpy"]
# what the DAG file may load of the project's library: the config and the trigger's bounds (plain Python)
LIGHT_CORE = {"recsys_core", "recsys_core.config", "recsys_core.errors", "recsys_core.trigger"}

# Runs in a fresh interpreter so Airflow reads this test's AIRFLOW_HOME and nothing is pre-imported.
PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
heavy = [m for m in sys.argv[2:] if m in sys.modules]  # before this probe imports anything more
heavy += [m for m in sys.modules if m.startswith("recsys_core")]
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
dag = bag.dags.get("recsys_nightly")
out = {"errors": {k: str(v) for k, v in bag.import_errors.items()}, "heavy": heavy}
if dag is not None:
    order, task = [], [t for t in dag.tasks if not t.upstream_list]
    while task:
        assert len(task) == 1, "the DAG must be one chain"
        order.append(task[0].task_id)
        task = task[0].downstream_list
    out.update(
        order=order,
        retries={t.task_id: t.retries for t in dag.tasks},
        spark={t.task_id: {"conn_id": t._conn_id, "application": t.application, "args": t.application_args,
                           "env": sorted(t.env_vars), "binary": t._spark_binary}
               for t in dag.tasks if isinstance(t, SparkSubmitOperator)},
        bash_env={t.task_id: sorted(t.env) for t in dag.tasks if not isinstance(t, SparkSubmitOperator)},
        schedule=str(dag.schedule), catchup=dag.catchup, max_active_runs=dag.max_active_runs,
        tags=sorted(dag.tags), doc=bool(dag.doc_md), params=sorted(dag.params.keys()),
        param_docs={k: dag.params.get_param(k).description for k in dag.params.keys()},
        param_schemas={k: dag.params.get_param(k).schema for k in dag.params.keys()},
        outlets={t.task_id: [[a.name, a.uri] for a in t.outlets] for t in dag.tasks if t.outlets},
        failure_callbacks=sorted({getattr(t.on_failure_callback[0] if isinstance(t.on_failure_callback, list)
                                   else t.on_failure_callback, "__name__", None) or "" for t in dag.tasks}),
    )
consumer = bag.dags.get("recsys_recommendations_consumer")
if consumer is not None:
    condition = getattr(consumer.timetable, "asset_condition", None)
    out["consumer"] = {"assets": sorted(a.name for a in getattr(condition, "objects", ())),
                       "tasks": [t.task_id for t in consumer.tasks]}
print("RESULT" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def dag_info(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        # a database that cannot exist: parsing the DAG must not need one
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/missing-dir/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
    }
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(PROJECT / "dags"), *HEAVY],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT")]
    assert proc.returncode == 0 and line, proc.stderr[-3000:]
    return json.loads(line[0][len("RESULT") :])


def test_dag_file_imports_without_errors_and_without_a_database(dag_info):
    assert dag_info["errors"] == {}
    assert "order" in dag_info, "recsys_nightly not found in the dags folder"


def test_tasks_run_the_nightly_steps_in_order(dag_info):
    assert dag_info["order"] == EXPECTED_ORDER + ["report", "cleanup"]


def test_every_task_retries(dag_info):
    assert set(dag_info["retries"]) == set(EXPECTED_ORDER) | {"report", "cleanup"}
    assert all(r >= 1 for r in dag_info["retries"].values()), dag_info["retries"]


def test_dag_settings_for_a_nightly_schedule(dag_info):
    assert dag_info["catchup"] is False
    assert dag_info["max_active_runs"] == 1
    assert "recsys" in dag_info["tags"] and dag_info["doc"]
    # the folders, the warehouse and the config file are the deployment's, not a trigger's
    from recsys_core.trigger import TRIGGER_PARAMS

    assert dag_info["params"] == sorted(TRIGGER_PARAMS)


def test_parsing_the_dag_imports_no_heavy_library(dag_info):
    assert set(dag_info["heavy"]) <= LIGHT_CORE


def test_dag_steps_match_the_jobs_package():
    from jobs import STEPS

    assert list(STEPS) == EXPECTED_ORDER
    for step in STEPS:
        assert (PROJECT / "jobs" / f"{step}.py").is_file(), step


def test_params_are_typed_bounded_and_explained(dag_info):
    assert all(doc and len(doc) > 10 for doc in dag_info["param_docs"].values()), dag_info[
        "param_docs"
    ]
    top_n = dag_info["param_schemas"]["top_n"]
    assert (top_n["minimum"], top_n["maximum"]) == (1, 1000) and "integer" in top_n["type"]
    assert dag_info["param_schemas"]["ds"]["pattern"]
    assert set(dag_info["param_schemas"]["model_mode"]["enum"]) == {
        None,
        "softmax",
        "regression",
        "classification",
    }
    assert "boolean" in dag_info["param_schemas"]["tune_model"]["type"]
    settings = dag_info["param_schemas"]["settings"]
    assert settings["type"] == "object" and settings["additionalProperties"] is False
    assert "evaluation.bless_margin" not in settings["properties"]
    assert settings["properties"]["ranking.top_n"]["maximum"] == top_n["maximum"]


def test_every_task_alerts_on_failure(dag_info):
    assert dag_info["failure_callbacks"] == ["notify_failure"]


def test_spark_steps_are_submitted_through_spark_default_and_the_others_are_not(dag_info):
    assert sorted(dag_info["spark"]) == sorted(SPARK_STEPS)
    for step, task in dag_info["spark"].items():
        assert task["conn_id"] == "spark_default"
        assert Path(task["application"]) == PROJECT / "jobs" / f"{step}.py"
        assert task["args"] == ["--ds", "{{ params.ds or ds }}"]
        assert Path(task["binary"]).name == "spark-submit" and Path(task["binary"]).exists()
        # the same RECSYS_* variables as the other tasks, and the project's Python for driver and executors
        assert set(task["env"]) == set(dag_info["bash_env"]["train_towers"]) | {
            "PYSPARK_PYTHON",
            "PYSPARK_DRIVER_PYTHON",
        }
    assert set(dag_info["bash_env"]) == set(EXPECTED_ORDER + ["report", "cleanup"]) - set(
        SPARK_STEPS
    )


def test_the_spark_steps_are_the_jobs_that_start_a_spark_session():
    from jobs import SPARK_STEPS as declared
    from jobs import STEPS

    assert sorted(declared) == sorted(SPARK_STEPS)
    for step in STEPS:
        uses_spark = "spark_session(" in (PROJECT / "jobs" / f"{step}.py").read_text()
        assert uses_spark == (step in SPARK_STEPS), step


def test_publish_emits_the_recommendations_asset_and_the_example_consumer_is_scheduled_on_it(
    dag_info,
):
    """Downstream DAGs can run on fresh recommendations: only publish emits the Asset (after the
    transaction commits), and the example consumer's schedule is that Asset."""
    assert dag_info["outlets"] == {
        "publish": [["recsys_recommendations", "x-recsys://warehouse/recommendations"]]
    }
    assert dag_info["consumer"] == {
        "assets": ["recsys_recommendations"],
        "tasks": ["fresh_recommendations"],
    }
