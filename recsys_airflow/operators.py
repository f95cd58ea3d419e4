"""The operator every recsys_nightly task uses: run one step's job for the run's ds in a subprocess."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

# jobs/common.py exits with this code on bad input or config: retrying cannot fix it
EXIT_USER_ERROR = 3


class RecsysJobOperator(BashOperator):
    """`python -m jobs.<step> --ds {{ ds }}` with the run's params passed as RECSYS_* variables."""

    def __init__(self, *, step: str, **kwargs):
        super().__init__(
            task_id=step,
            bash_command=f"exec {shlex.quote(sys.executable)} -m jobs.{step} --ds {{{{ params.ds or ds }}}}",
            env={
                "RECSYS_DATA_DIR": "{{ params.data_dir }}",
                "RECSYS_WORK_DIR": "{{ params.work_dir }}",
                "RECSYS_WAREHOUSE_URL": "{{ params.warehouse_url }}",
                "RECSYS_CONFIG": "{{ params.config_path }}",
                "RECSYS_SETTINGS": "{{ params.settings | join('\n') }}"
                "{% if params.top_n %}\nranking.top_n={{ params.top_n }}{% endif %}"
                "{% if params.model_mode %}\nmodel.mode={{ params.model_mode }}{% endif %}",
                "RECSYS_RUN_ID": "{{ run_id }}",
                "TF_CPP_MIN_LOG_LEVEL": "2",
            },
            append_env=True,
            **kwargs,
        )

    def execute(self, context):
        try:
            return super().execute(context)
        except AirflowException:
            process = self.subprocess_hook.sub_process
            error = _job_error(context, self.task_id)
            if process is not None and process.returncode == EXIT_USER_ERROR:
                raise AirflowFailException(f"{self.task_id} rejected its input or config, not retrying: {error}") \
                    from None
            raise AirflowException(f"{self.task_id} failed: {error}") from None


def _job_error(context, step: str) -> str:
    """The error the job recorded under <work_dir>/lake/_steps/ds=<ds>/<step>.json (see jobs/common.py)."""
    ds = context["params"].get("ds") or context["ds"]
    record = Path(context["params"]["work_dir"]) / "lake" / "_steps" / f"ds={ds}" / f"{step}.json"
    try:
        return json.loads(record.read_text()).get("error", "no error recorded")
    except (OSError, ValueError):
        return f"no step record at {record}"
