"""The whole nightly DAG through Airflow on real MovieLens data (a module of its own, so the test
workers run it beside the generated-data runs of test_nightly_dag.py)."""

import pytest

from recsys_core.datasets.movielens import ingest_movielens
from tests.integration.dag_runs import assert_invariants, duckdb_url, recsys_run
from tests.paths import SHARED_DATA

DS = "2026-01-31"


@pytest.mark.skipif(
    not (SHARED_DATA / "ml-latest-small").is_dir(), reason="MovieLens ml-latest-small not present"
)
def test_movielens_latest_small_end_to_end(tmp_path, airflow_home):
    data = tmp_path / "ml"
    counts = ingest_movielens(SHARED_DATA / "ml-latest-small", data)
    assert counts["interactions"] == 100836
    proc = recsys_run(data, tmp_path / "work", airflow_home, DS)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert_invariants(duckdb_url(tmp_path / "work"), data, DS)
