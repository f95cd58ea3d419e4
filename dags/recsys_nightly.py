"""
### recsys_nightly

Nightly two-tower recommendations for every user, keyed by the run's logical date (`ds`):

validate inputs (Great Expectations) → build features (Spark) → validate features → train towers
(Keras) → gate model (bless the new model, or keep the last blessed one) → embed items → item
similarity (Spark) → retrieve candidates (Spark) → rank → publish (DuckDB or PostgreSQL warehouse,
one transaction per ds; emits the Asset `recsys_recommendations`) → report (run_report table and an HTML report under
<work_dir>/reports/ds=.../report.html) → cleanup (what the config's [retention] no longer keeps).

Each task runs `python -m jobs.<task_id> --ds <ds>`, except the Spark steps (build_features,
item_similarity, retrieve_candidates, rank_candidates), which run `spark-submit jobs/<task_id>.py --ds <ds>`
with the master and deploy mode of the Airflow connection `spark_default` and the driver memory,
shuffle partitions and executors of the config's [spark] section. The data, the work folder (lake and
models), the config file and the warehouse are the deployment's: the worker's RECSYS_DATA_DIR,
RECSYS_WORK_DIR and RECSYS_CONFIG and the Airflow connection `recsys_warehouse`. A trigger chooses only
the params below, each within bounds (recsys_core/trigger.py). This file is wiring only.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param, chain

from jobs import SPARK_STEPS, TASKS
from recsys_airflow.assets import RECOMMENDATIONS
from recsys_airflow.notify import notify_failure
from recsys_airflow.operators import RecsysJobOperator, RecsysSparkJobOperator
from recsys_core.config import MODEL_MODES
from recsys_core.trigger import MAX_TOP_N, settings_schema

# a run stuck longer than this fails instead of blocking the next night's (one run at a time)
DAGRUN_TIMEOUT = timedelta(hours=6)
TASK_TIMEOUT = timedelta(hours=2)  # a step running longer is stuck: it fails, then retries
# infrastructure failures (a lost Spark executor, a busy warehouse) often pass on a retry; bad input
# or config fails at once whatever this says (EXIT_USER_ERROR)
TASK_RETRIES = 2
RETRY_DELAY = timedelta(minutes=2)  # the first wait; exponential backoff lengthens the next ones
# the Assets a task emits when it succeeds: DAGs scheduled on RECOMMENDATIONS run on fresh ones
OUTLETS = {"publish": [RECOMMENDATIONS]}

with DAG(
    dag_id="recsys_nightly",
    description="Two-tower content-based recommendations for every user, published nightly",
    schedule="0 2 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=DAGRUN_TIMEOUT,
    default_args={
        "owner": "recsys",
        "retries": TASK_RETRIES,
        "retry_delay": RETRY_DELAY,
        "retry_exponential_backoff": True,
        "execution_timeout": TASK_TIMEOUT,
        "on_failure_callback": notify_failure,
    },
    params={
        # optional like the others (null): a required-looking string would keep the trigger form's
        # Trigger button disabled until someone typed a date (tests/browser/test_airflow_ui.py)
        "ds": Param(
            None,
            type=["null", "string"],
            pattern=r"^$|^\d{4}-\d{2}-\d{2}$",
            description="Date to compute (YYYY-MM-DD, at most tomorrow UTC); empty means the run's "
            "logical date.",
        ),
        "top_n": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=MAX_TOP_N,
            description="Recommendations per user; empty keeps ranking.top_n of the config (20).",
        ),
        "model_mode": Param(
            None,
            type=["null", "string"],
            enum=[None, *MODEL_MODES],
            description="Model: softmax (ids, recent items, sampled softmax; the default), regression "
            "(MSE on the scaled rating) or classification (sigmoid, cross-entropy on the label); "
            "empty keeps model.mode of the config.",
        ),
        "tune_model": Param(
            None,
            type=["null", "boolean"],
            description="Search a few model settings on a validation split of the training data "
            "before training (softmax model; adds about 20 trainings); empty keeps model.tune (false).",
        ),
        "settings": Param(
            {},
            **settings_schema(),
            description="Config overrides a trigger may make, each within its bounds, such as "
            '{"retrieval.new_items": 5, "model.epochs": 2}. The folders, the warehouse and the '
            "config file are the deployment's and cannot be changed here.",
        ),
    },
    doc_md=__doc__,
    tags=["recsys", "nightly"],
) as dag:
    chain(
        *[
            RecsysSparkJobOperator(step=task)
            if task in SPARK_STEPS
            else RecsysJobOperator(step=task, outlets=OUTLETS.get(task, []))
            for task in TASKS
        ]
    )
