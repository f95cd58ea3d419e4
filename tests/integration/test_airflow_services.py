"""The real Airflow: scheduler, DAG processor, API server and triggerer on PostgreSQL with the LocalExecutor."""

import time
import urllib.error

from recsys_core.datasets.generate import generate_dataset
from tests.integration.airflow_services import airflow_services
from tests.integration.dag_runs import assert_invariants, duckdb_url, table_rows

DAG = "recsys_nightly"


def wait_for_state(api, run_id: str, seconds: float) -> str:
    deadline = time.time() + seconds
    while time.time() < deadline:
        state = api.call("GET", f"/dags/{DAG}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(5)
    return "timeout"


def first_task_of_the_scheduled_run(api, seconds: float) -> dict:
    """The scheduled run once its first task (validate_inputs) has ended, with that task's state."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        for run in api.call("GET", f"/dags/{DAG}/dagRuns?run_type=scheduled")["dag_runs"]:
            path = f"/dags/{DAG}/dagRuns/{run['dag_run_id']}/taskInstances/validate_inputs"
            try:
                state = api.call("GET", path)["state"]
            except urllib.error.HTTPError:  # the run exists, its task instances not yet
                continue
            if state in ("success", "failed"):
                return {**run, "validate_inputs": state}
        time.sleep(5)
    return {"validate_inputs": "timeout", "conf": None, "logical_date": ""}


def test_a_rest_trigger_with_conf_publishes_and_the_schedule_starts_its_run(pg_server, tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    generate_dataset(data, users=150, items=100, interactions=3000, seed=4)
    home = tmp_path / "airflow"
    home.mkdir()
    # the deployment's config of every run
    config = tmp_path / "recsys.toml"
    config.write_text("[model]\nepochs = 2\n")
    env = {
        "RECSYS_DATA_DIR": str(data),
        "RECSYS_WORK_DIR": str(work),
        "RECSYS_SETTINGS": "",
        "RECSYS_CONFIG": str(config),
    }
    with airflow_services(pg_server, home, env) as api:
        api.wait(f"/dags/{DAG}", 240)
        run = api.call(
            "POST",
            f"/dags/{DAG}/dagRuns",
            {
                "logical_date": "2026-01-31T00:00:00Z",
                "conf": {
                    "top_n": 7,
                    "model_mode": "regression",
                    "settings": {"model.epochs": 2},
                },
            },
        )
        # unpaused, the scheduler creates the latest interval's run by itself, with the DAG's defaults
        # (no conf); one run at a time (max_active_runs=1), in whichever order the scheduler picks
        api.call("PATCH", f"/dags/{DAG}", {"is_paused": False})
        scheduled = first_task_of_the_scheduled_run(api, 1500)
        assert scheduled["validate_inputs"] == "success", (home / "scheduler.log").read_text()[
            -3000:
        ]
        assert scheduled["conf"] in ({}, None) and scheduled["logical_date"][:10] != "2026-01-31"
        # the triggered run shows a whole run through these services: the scheduled one is stopped
        # after its first task, which frees the one slot for the triggered run if it is still queued
        api.call(
            "PATCH",
            f"/dags/{DAG}/dagRuns/{scheduled['dag_run_id']}",
            {"state": "failed", "note": "stopped by the test after its first task"},
        )
        assert wait_for_state(api, run["dag_run_id"], 1200) == "success", (
            home / "scheduler.log"
        ).read_text()[-3000:]
    # the services are stopped here, also when an assertion above failed
    url = duckdb_url(work)
    assert_invariants(url, data, "2026-01-31", top_n=7)
    assert table_rows(url, "SELECT count(DISTINCT run_id) FROM recommendations") == [(1,)]
    # the triggered run trained in regression mode: predicted_rating holds ratings on the 0.5..5 scale
    (high,) = table_rows(
        url,
        "SELECT max(predicted_rating) FROM recommendations WHERE ds = '2026-01-31'",
    )[0]
    assert high > 1
    # the scheduled run validated the deployment's inputs for its own ds, as the schedule made it
    scheduled_ds = scheduled["logical_date"][:10]
    assert (work / "lake" / "_steps" / f"ds={scheduled_ds}" / "validate_inputs.json").exists()
