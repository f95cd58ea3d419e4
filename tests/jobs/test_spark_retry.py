"""A Spark task that fails after emitting rows is retried without duplicated or missing output rows."""

import os
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from recsys_core.candidates.similarity import top_k_neighbors
from recsys_core.io.lake import Lake
from recsys_core.model.embeddings import embedding_table

DS = "2026-01-31"
pytestmark = pytest.mark.spark


def similarity_job(work, master, fault):
    env = {**os.environ, "RECSYS_FAULT": fault}
    cmd = [
        sys.executable,
        "-m",
        "jobs.item_similarity",
        "--ds",
        DS,
        "--work",
        str(work),
        "--set",
        f"spark.master={master}",
        "--set",
        "similarity.k=5",
        "--set",
        "retrieval.similar_per_item=5",
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def work(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    ids = np.arange(1000, 1300)
    Lake(tmp_path / "lake").write_table(
        embedding_table(ids, "item_id", vectors), "item_embeddings", DS
    )
    return tmp_path, ids, vectors


def test_failed_task_attempt_is_retried_and_output_is_exact(work):
    path, ids, vectors = work
    proc = similarity_job(path, "local[2,3]", "similarity_task")  # 3 attempts allowed per task
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "injected failure at similarity_task" in proc.stderr  # the first attempt really failed
    out = pq.read_table(path / "lake" / "item_neighbors" / f"ds={DS}").to_pandas()
    idx, d2 = top_k_neighbors(vectors, 5)
    assert len(out) == 300 * 5
    assert not out.duplicated(["item_id", "rank"]).any()
    out = out.sort_values(["item_id", "rank"])
    np.testing.assert_array_equal(out["neighbor_id"].to_numpy().reshape(300, 5), ids[idx])
    np.testing.assert_allclose(out["distance"].to_numpy().reshape(300, 5), d2, rtol=1e-6)


def test_without_retries_the_same_fault_fails_the_job_and_keeps_no_partition(work):
    path, _, _ = work
    proc = similarity_job(path, "local[2]", "similarity_task")  # one attempt per task
    assert proc.returncode == 1
    assert not (path / "lake" / "item_neighbors" / f"ds={DS}").exists()
