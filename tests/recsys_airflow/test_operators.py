"""The operators: spark-submit's command from the connection spark_default and the deployment's
config, what a trigger may change (refused before the job starts), the warehouse from the connection
recsys_warehouse, and a job's exit code turned into a failure that is retried or not."""

import json
import sys
from pathlib import Path

import pytest

from recsys_airflow.operators import (
    JOB_ENV,
    RecsysJobOperator,
    RecsysSparkJobOperator,
    job_env,
    job_failure,
)
from recsys_core.errors import EXIT_TRANSIENT, EXIT_USER_ERROR

DS = "2026-01-31"


@pytest.fixture(autouse=True)
def deployment(tmp_path, monkeypatch):
    """A worker's environment: its work folder, the default config, no deployment overrides."""
    monkeypatch.setenv("RECSYS_WORK_DIR", str(tmp_path / "work"))
    for name in ("RECSYS_CONFIG", "RECSYS_DEPLOYMENT_SETTINGS", "AIRFLOW_CONN_RECSYS_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)


def context(settings=None, top_n=None, ds=""):
    params = {"settings": dict(settings or {}), "top_n": top_n, "model_mode": None, "ds": ds}
    return {"params": params, "ds": DS, "run_id": "manual__test"}


def spark_submit_command(step, ctx):
    """What the task would run: the operator rendered for the run, configured as in execute()."""
    op = RecsysSparkJobOperator(step=step)
    op.render_template_fields(ctx)
    op.env_vars = {**op.env_vars, **job_env(ctx, step)}
    op.apply_config()
    return op, op._get_hook()._build_spark_submit_command(op.application)


def rendered_on_local(step, monkeypatch, deployment_setting, ctx=None):
    """The Spark operator of `step` rendered for a run, with one setting of the deployment, spark_default
    on local[1]."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[1]"})
    )
    monkeypatch.setenv("RECSYS_DEPLOYMENT_SETTINGS", deployment_setting)
    op, ctx = RecsysSparkJobOperator(step=step), ctx or context()
    op.render_template_fields(ctx)
    return op, ctx


def option(cmd, flag):
    return cmd[cmd.index(flag) + 1] if flag in cmd else None


def confs(cmd):
    return {
        cmd[i + 1].split("=", 1)[0]: cmd[i + 1].split("=", 1)[1]
        for i, a in enumerate(cmd)
        if a == "--conf"
    }


def test_master_comes_from_spark_default_and_resources_from_the_deployment_config(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_DEFAULT",
        json.dumps(
            {
                "conn_type": "spark",
                "host": "spark://10.1.2.3:7077",
                "extra": {"deploy-mode": "client"},
            }
        ),
    )
    config = tmp_path / "recsys.toml"
    config.write_text(
        '[spark]\nmaster = "local[2]"\ndriver_memory = "3g"\nshuffle_partitions = 5\n'
        'executor_memory = "2g"\ntotal_executor_cores = 4\n'
    )
    monkeypatch.setenv("RECSYS_CONFIG", str(config))
    monkeypatch.setenv("RECSYS_DEPLOYMENT_SETTINGS", "spark.executor_cores=2")
    op, cmd = spark_submit_command("retrieve_candidates", context({"ranking.top_n": 7}))
    assert cmd[0] == str(
        Path(sys.executable).with_name("spark-submit")
    )  # beside the project's Python
    assert (
        option(cmd, "--master") == "spark://10.1.2.3:7077"
    )  # the connection's, not the config's local[2]
    assert option(cmd, "--deploy-mode") == "client"
    assert option(cmd, "--driver-memory") == "3g"
    assert confs(cmd)["spark.sql.shuffle.partitions"] == "5"
    assert (
        option(cmd, "--executor-memory"),
        option(cmd, "--executor-cores"),
        option(cmd, "--total-executor-cores"),
    ) == ("2g", "2", "4")
    assert option(cmd, "--name") == "recsys-retrieve_candidates"
    assert cmd[-3:] == [op.application, "--ds", DS] and op.application.endswith(
        "/jobs/retrieve_candidates.py"
    )
    # the job reads the trigger's settings from the same variables as the other steps, and runs
    # this interpreter
    assert op.env_vars["RECSYS_SETTINGS"].splitlines() == ["ranking.top_n=7"]
    assert (
        set(JOB_ENV) <= set(op.env_vars)
        and op.env_vars["PYSPARK_PYTHON"] == op.env_vars["PYSPARK_DRIVER_PYTHON"]
    )


def test_default_config_on_local_passes_no_executor_settings(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[*]"})
    )
    _, cmd = spark_submit_command("build_features", context())
    assert option(cmd, "--master") == "local[*]"
    assert (
        option(cmd, "--driver-memory") == "4g" and confs(cmd)["spark.sql.shuffle.partitions"] == "8"
    )
    assert not {
        "--executor-memory",
        "--executor-cores",
        "--total-executor-cores",
        "--deploy-mode",
    } & set(cmd)


def test_an_invalid_spark_setting_fails_the_task_without_retry(monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    op, ctx = rendered_on_local("build_features", monkeypatch, "spark.driver_memory=lots")
    with pytest.raises(AirflowFailException, match=r"spark\.driver_memory"):
        op.execute(ctx)


def test_exit_code_3_is_not_retried_and_others_are_with_the_recorded_error(tmp_path):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    ctx = context()
    record = tmp_path / "work" / "lake" / "_steps" / f"ds={DS}" / "publish.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"status": "failed", "error": "MissingInputError: no candidates"}))
    user_error = job_failure(ctx, "publish", EXIT_USER_ERROR)
    assert isinstance(user_error, AirflowFailException) and "no candidates" in str(user_error)
    for code in (1, EXIT_TRANSIENT, 137, None):
        other = job_failure(ctx, "publish", code)
        assert not isinstance(other, AirflowFailException) and isinstance(other, AirflowException)
        assert "no candidates" in str(other)
    assert "passing fault, retrying" in str(job_failure(ctx, "publish", EXIT_TRANSIENT))
    assert "no step record" in str(job_failure(ctx, "report", 1))


def test_both_operators_pass_the_same_job_variables(tmp_path):
    bash, spark = RecsysJobOperator(step="publish"), RecsysSparkJobOperator(step="rank_candidates")
    assert bash.env == JOB_ENV and {k: spark.env_vars[k] for k in JOB_ENV} == JOB_ENV


@pytest.mark.spark
def test_a_spark_job_rejecting_its_input_exits_3_through_spark_submit_and_is_not_retried(
    tmp_path, monkeypatch
):
    """Real spark-submit on local[1]: item_similarity finds no item embeddings for the ds and exits 3,
    spark-submit passes the code on, and the task fails without retry naming the job's error."""
    from airflow.sdk.exceptions import AirflowFailException

    op, ctx = rendered_on_local("item_similarity", monkeypatch, "spark.driver_memory=512m")
    with pytest.raises(
        AirflowFailException, match=r"item_similarity rejected .*MissingInputError.*item_embeddings"
    ):
        op.execute(ctx)
    assert op._hook._submit_sp.returncode == EXIT_USER_ERROR


@pytest.mark.parametrize(
    "params, refused",
    [
        ({"settings": {"evaluation.bless_margin": 100}}, "evaluation.bless_margin"),
        ({"settings": {"ranking.top_n": 5000}}, "ranking.top_n"),
        ({"top_n": 0}, "ranking.top_n"),
        ({"data_dir": "/"}, "data_dir"),
        ({"ds": "2099-12-31"}, "ds 2099-12-31 lies after"),
    ],
)
@pytest.mark.parametrize("operator", [RecsysJobOperator, RecsysSparkJobOperator])
def test_a_forbidden_trigger_fails_the_task_before_its_job_starts(
    tmp_path, monkeypatch, operator, params, refused
):
    """Airflow checks the params' schemas when a run is created; a run created some other way (or a
    conf key the DAG does not declare) is refused by the task itself, without retries, and no job
    runs: there is no step record."""
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[1]"})
    )
    ctx = context()
    ctx["params"].update(params)
    op = operator(step="build_features" if operator is RecsysSparkJobOperator else "publish")
    op.render_template_fields(ctx)
    with pytest.raises(AirflowFailException, match=f"refused the trigger.*{refused}"):
        op.execute(ctx)
    assert not (tmp_path / "work").exists()


def test_the_warehouse_comes_from_the_connection_recsys_warehouse(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_RECSYS_WAREHOUSE", "postgresql://writer:s3cret@db.internal:5432/recsys"
    )
    env = job_env(context(), "publish")
    assert env["RECSYS_WAREHOUSE_URL"] == "postgres://writer:s3cret@db.internal:5432/recsys"
    monkeypatch.delenv("AIRFLOW_CONN_RECSYS_WAREHOUSE")
    assert "RECSYS_WAREHOUSE_URL" not in job_env(context(), "publish")  # the worker's own, if any


@pytest.mark.parametrize(
    "top_n, model_mode", [(None, None), (7, None), (None, "regression"), (12, "classification")]
)
def test_the_job_settings_are_the_mapped_params_then_the_trigger_settings(top_n, model_mode):
    """RECSYS_SETTINGS is trigger_overrides of the run's params: the one table of params and keys."""
    from recsys_core.trigger import trigger_overrides

    ctx = context({"model.epochs": 2}, top_n=top_n)
    ctx["params"]["model_mode"] = model_mode
    lines = job_env(ctx, "publish")["RECSYS_SETTINGS"].splitlines()
    assert lines == trigger_overrides(ctx["params"])
    assert lines[-1] == "model.epochs=2" and ("ranking.top_n=7" in lines) == (top_n == 7)
