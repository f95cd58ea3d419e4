"""The Spark steps' operator: spark-submit's command from the connection spark_default and the run's
config, and a job's exit code turned into a failure that is retried or not."""

import json
import sys
from pathlib import Path

import pytest

from recsys_airflow.operators import (
    JOB_ENV,
    RecsysJobOperator,
    RecsysSparkJobOperator,
    job_failure,
)
from recsys_core.errors import EXIT_USER_ERROR

DS = "2026-01-31"


def context(tmp_path, config_path="", settings=(), top_n=None):
    params = {
        "data_dir": str(tmp_path / "data"),
        "work_dir": str(tmp_path / "work"),
        "warehouse_url": "",
        "config_path": str(config_path),
        "settings": list(settings),
        "top_n": top_n,
        "model_mode": None,
        "ds": "",
    }
    return {"params": params, "ds": DS, "run_id": "manual__test"}


def spark_submit_command(step, ctx):
    """What the task would run: the operator rendered for the run, configured as in execute()."""
    op = RecsysSparkJobOperator(step=step)
    op.render_template_fields(ctx)
    op.apply_config()
    return op, op._get_hook()._build_spark_submit_command(op.application)


def rendered_on_local(step, tmp_path, monkeypatch, setting):
    """The Spark operator of `step` rendered for a run with one setting, spark_default on local[1]."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[1]"})
    )
    op, ctx = RecsysSparkJobOperator(step=step), context(tmp_path, settings=[setting])
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


def test_master_comes_from_spark_default_and_resources_from_the_config(tmp_path, monkeypatch):
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
    op, cmd = spark_submit_command(
        "retrieve_candidates",
        context(tmp_path, config, ["spark.executor_cores=2", "ranking.top_n=7"]),
    )
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
    # the job reads the run's params from the same variables as the other steps, and runs this interpreter
    assert op.env_vars["RECSYS_SETTINGS"].splitlines() == [
        "spark.executor_cores=2",
        "ranking.top_n=7",
    ]
    assert (
        set(JOB_ENV) <= set(op.env_vars)
        and op.env_vars["PYSPARK_PYTHON"] == op.env_vars["PYSPARK_DRIVER_PYTHON"]
    )


def test_default_config_on_local_passes_no_executor_settings(tmp_path, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[*]"})
    )
    _, cmd = spark_submit_command("build_features", context(tmp_path))
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


def test_an_invalid_spark_setting_fails_the_task_without_retry(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    op, ctx = rendered_on_local("build_features", tmp_path, monkeypatch, "spark.driver_memory=lots")
    with pytest.raises(AirflowFailException, match=r"spark\.driver_memory"):
        op.execute(ctx)


def test_exit_code_3_is_not_retried_and_others_are_with_the_recorded_error(tmp_path):
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    ctx = context(tmp_path)
    record = tmp_path / "work" / "lake" / "_steps" / f"ds={DS}" / "publish.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"status": "failed", "error": "MissingInputError: no candidates"}))
    user_error = job_failure(ctx, "publish", EXIT_USER_ERROR)
    assert isinstance(user_error, AirflowFailException) and "no candidates" in str(user_error)
    for code in (1, 137, None):
        other = job_failure(ctx, "publish", code)
        assert not isinstance(other, AirflowFailException) and isinstance(other, AirflowException)
        assert "no candidates" in str(other)
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

    op, ctx = rendered_on_local(
        "item_similarity", tmp_path, monkeypatch, "spark.driver_memory=512m"
    )
    with pytest.raises(
        AirflowFailException, match=r"item_similarity rejected .*MissingInputError.*item_embeddings"
    ):
        op.execute(ctx)
    assert op._hook._submit_sp.returncode == EXIT_USER_ERROR


@pytest.mark.parametrize(
    "top_n, model_mode", [(None, None), (7, None), (None, "regression"), (12, "classification")]
)
def test_the_rendered_settings_are_the_trigger_settings_then_the_mapped_params(
    tmp_path, top_n, model_mode
):
    """The operators' RECSYS_SETTINGS template maps the DAG params to config keys as config.py's
    PARAM_SETTINGS says: the template cannot drift from the one table of params and keys."""
    from recsys_core.config import param_overrides

    ctx = context(tmp_path, settings=["model.epochs=2"], top_n=top_n)
    ctx["params"]["model_mode"] = model_mode
    op = RecsysJobOperator(step="publish")
    op.render_template_fields(ctx)
    lines = [line for line in op.env["RECSYS_SETTINGS"].splitlines() if line]
    assert lines == ["model.epochs=2", *param_overrides(ctx["params"])]
