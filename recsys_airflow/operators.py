"""The operators of the recsys_nightly tasks: run one step's job for the run's ds, as a subprocess
(`python -m jobs.<step>`) or, for the Spark steps, through spark-submit and the connection spark_default."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

import jobs

SPARK_CONN_ID = "spark_default"
# the warehouse of a deployment: its URL (password included) lives in this Airflow connection, never in
# a param; without it the jobs use RECSYS_WAREHOUSE_URL of the worker's environment or the config's
WAREHOUSE_CONN_ID = "recsys_warehouse"
DS_TEMPLATE = "{{ params.ds or ds }}"
# what every job reads besides the worker's own RECSYS_DATA_DIR, RECSYS_WORK_DIR and RECSYS_CONFIG
# (recsys_core/step_runner.py); RECSYS_SETTINGS and the warehouse are added at execute time (job_env)
JOB_ENV = {
    "RECSYS_RUN_ID": "{{ run_id }}",
    # 2: TensorFlow's C++ logs errors only; its INFO and WARNING lines would bury the job's log
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def job_env(context, task_id: str) -> dict[str, str]:
    """The variables a job gets from its run: RECSYS_SETTINGS, the trigger's config overrides checked
    against what a trigger may change (a refusal fails the task without retries), and
    RECSYS_WAREHOUSE_URL from the connection recsys_warehouse when the deployment defines it (its
    password registered with Airflow's secret masker, so no task log shows it)."""
    from recsys_core.trigger import TriggerError, check_ds_not_ahead, trigger_overrides

    params = context["params"]
    try:
        check_ds_not_ahead(params.get("ds") or context["ds"])
        env = {"RECSYS_SETTINGS": "\n".join(trigger_overrides(params))}
    except TriggerError as exc:
        raise AirflowFailException(f"{task_id} refused the trigger, not retrying: {exc}") from None
    url = warehouse_connection_url()
    if url:
        env["RECSYS_WAREHOUSE_URL"] = url
    return env


def warehouse_connection_url() -> str | None:
    """The URL of the connection recsys_warehouse, or None when the deployment defines none."""
    from airflow.sdk import Connection

    try:  # Airflow registers the password with its secret masker as it reads the connection
        conn = Connection.get(WAREHOUSE_CONN_ID)
    except AirflowException:  # AirflowNotFoundException: the deployment defines none
        return None
    return conn.get_uri()


class RecsysJobOperator(BashOperator):
    """`python -m jobs.<step> --ds {{ ds }}` with the run's params passed as RECSYS_* variables."""

    def __init__(self, *, step: str, **kwargs):
        super().__init__(
            task_id=step,
            bash_command=f"exec {shlex.quote(sys.executable)} -m jobs.{step} --ds {DS_TEMPLATE}",
            env=dict(JOB_ENV),
            append_env=True,
            **kwargs,
        )

    def execute(self, context):
        self.env = {**(self.env or {}), **job_env(context, self.task_id)}
        try:
            result = super().execute(context)
        except AirflowException:
            process = self.subprocess_hook.sub_process
            raise job_failure(
                context, self.task_id, process.returncode if process else None
            ) from None
        if self.outlets:  # what the step wrote, on the Asset events it emits (assets.py)
            extra = asset_event_extra(context, self.task_id)
            for asset in self.outlets:
                context["outlet_events"][asset].extra = extra
        return result


class RecsysSparkJobOperator(SparkSubmitOperator):
    """`spark-submit jobs/<step>.py --ds {{ ds }}`: master and deploy mode from the connection
    spark_default, driver memory, shuffle partitions and executors from the run's config (spark.*)."""

    def __init__(self, *, step: str, **kwargs):
        python = sys.executable  # the driver and the executors run the project's interpreter
        super().__init__(
            task_id=step,
            conn_id=SPARK_CONN_ID,
            application=str(Path(jobs.__file__).resolve().parent / f"{step}.py"),
            application_args=["--ds", DS_TEMPLATE],
            # Spark's own INFO lines would bury the job's log in the task log; `python -m` runs log WARN too
            conf={"spark.log.level": "WARN"},
            env_vars={**JOB_ENV, "PYSPARK_PYTHON": python, "PYSPARK_DRIVER_PYTHON": python},
            spark_binary=str(Path(python).with_name("spark-submit")),
            name=f"recsys-{step}",
            **kwargs,
        )

    def apply_config(self) -> None:
        """Resources from the run's config (RECSYS_CONFIG and RECSYS_SETTINGS, rendered), read the way
        the job reads it; called at execute time, so parsing the DAG never loads recsys_core."""
        from recsys_core.config import load_config
        from recsys_core.errors import ConfigError
        from recsys_core.step_runner import settings_lines

        try:
            spark = load_config(
                os.environ.get("RECSYS_CONFIG") or None,
                settings_lines(os.environ.get("RECSYS_DEPLOYMENT_SETTINGS"))
                + settings_lines(self.env_vars["RECSYS_SETTINGS"]),
            ).spark
        except ConfigError as exc:
            raise AirflowFailException(
                f"{self.task_id} rejected its config, not retrying: {exc}"
            ) from None
        self._driver_memory = spark.driver_memory
        self._executor_memory = spark.executor_memory or None
        self._executor_cores = spark.executor_cores or None
        self._total_executor_cores = spark.total_executor_cores or None
        self.conf = {
            **(self.conf or {}),
            "spark.sql.shuffle.partitions": str(spark.shuffle_partitions),
        }

    def execute(self, context):
        self.env_vars = {**(self.env_vars or {}), **job_env(context, self.task_id)}
        self.apply_config()
        try:
            return super().execute(context)
        except AirflowException as exc:
            # in client mode spark-submit exits with the Python driver's code, the job's own exit code;
            # chained: the hook's message ends with the tail of spark-submit's output
            process = self._hook._submit_sp if self._hook is not None else None
            raise job_failure(
                context, self.task_id, process.returncode if process else None
            ) from exc


def job_failure(context, step: str, returncode: int | None) -> AirflowException:
    """What a failed job's task raises, with the job's recorded error: AirflowFailException (no retry)
    when it exited with EXIT_USER_ERROR (bad input or config), else AirflowException (retried with
    backoff; EXIT_TRANSIENT says the job itself saw a passing fault of the infrastructure)."""
    from recsys_core.errors import EXIT_TRANSIENT, EXIT_USER_ERROR

    error = _job_error(context, step)
    if returncode == EXIT_USER_ERROR:
        return AirflowFailException(f"{step} rejected its input or config, not retrying: {error}")
    if returncode == EXIT_TRANSIENT:
        return AirflowException(f"{step} hit a passing fault, retrying: {error}")
    return AirflowException(f"{step} failed: {error}")


def _step_record(context, step: str) -> tuple[Path, dict | None]:
    """<work_dir>/lake/_steps/ds=<ds>/<step>.json, what the job recorded (recsys_core/step_runner.py),
    and its content (None when missing or unreadable)."""
    from recsys_core.config import DEFAULT_WORK_DIR
    from recsys_core.io.layout import WorkDir

    ds = context["params"].get("ds") or context["ds"]
    work = Path(os.environ.get("RECSYS_WORK_DIR") or DEFAULT_WORK_DIR)
    record = WorkDir(work).step_record(ds, step)
    try:
        return record, json.loads(record.read_text())
    except (OSError, ValueError):
        return record, None


def _job_error(context, step: str) -> str:
    record, content = _step_record(context, step)
    if content is None:
        return f"no step record at {record}"
    return content.get("error", "no error recorded")


def asset_event_extra(context, step: str) -> dict:
    """The extra of the Asset events a successful step emits: its ds and rows out per table."""
    _, content = _step_record(context, step)
    return {
        "ds": context["params"].get("ds") or context["ds"],
        "rows": (content or {}).get("rows_out") or {},
    }
