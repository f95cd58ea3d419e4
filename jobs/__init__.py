"""One runnable entry point per pipeline step: `python -m jobs.<step> --ds YYYY-MM-DD ...`."""

# The nightly steps in the order the DAG runs them; each is the module jobs/<step>.py.
STEPS = (
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
)

# After the steps: the run report (HTML and run_report rows), which reads every step's record, then the
# cleanup of what the retention settings no longer keep.
REPORT = "report"
CLEANUP = "cleanup"
TASKS = (*STEPS, REPORT, CLEANUP)  # every task of recsys_nightly, in order

# The steps that run Spark (they call recsys_core.spark.spark_session): the DAG submits these with
# spark-submit through the connection spark_default, the others run as `python -m jobs.<step>`.
SPARK_STEPS = ("build_features", "item_similarity", "retrieve_candidates", "rank_candidates")
