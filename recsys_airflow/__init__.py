"""Airflow adapters of the pipeline: the operator that runs a job as a task (kept out of recsys_core)."""
