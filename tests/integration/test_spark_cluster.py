"""The Spark steps run unchanged on a standalone cluster (master + worker on 127.0.0.1) and give the
same results as local[*]: only spark.master differs."""

import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from recsys_core.generate import generate_dataset
from tests.integration.spark_cluster import standalone_cluster

pytestmark = pytest.mark.integration
DS = "2026-01-31"
SPARK_STEPS = ("item_similarity", "retrieve_candidates")


def step(name, data, work, master):
    cmd = [sys.executable, "-m", f"jobs.{name}", "--ds", DS, "--data", str(data), "--work", str(work),
           "--set", f"spark.master={master}", "--set", "spark.shuffle_partitions=4", "--set", "model.epochs=2",
           "--set", "spark.driver_memory=1g"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]


def table(work, dataset, keys):
    df = pq.read_table(work / "lake" / dataset / f"ds={DS}").to_pandas()
    if "reasons" in df.columns:
        df["reasons"] = df["reasons"].map(lambda r: "; ".join(r))
    return df.sort_values(keys).reset_index(drop=True)


def test_similarity_and_retrieval_on_a_standalone_cluster_equal_local(tmp_path):
    data, local = tmp_path / "data", tmp_path / "local"
    generate_dataset(data, users=300, items=200, interactions=8000, seed=9)
    for name in ("validate_inputs", "build_features", "validate_features", "train_towers", "evaluate_model",
                 "embed_items"):
        step(name, data, local, "local[2]")
    cluster = tmp_path / "cluster"
    shutil.copytree(local, cluster)  # the same model and embeddings: only the Spark master differs
    for name in SPARK_STEPS:
        step(name, data, local, "local[*]")
    with standalone_cluster(tmp_path / "spark") as master:
        for name in SPARK_STEPS:
            step(name, data, cluster, master)
        worker_log = (tmp_path / "spark" / "worker.log").read_text()
    assert "Asked to launch executor" in worker_log  # the work ran on the cluster's executor
    for dataset, keys in (("item_neighbors", ["item_id", "rank"]), ("candidates", ["user_id", "item_id"])):
        a, b = table(local, dataset, keys), table(cluster, dataset, keys)
        assert len(a) > 0
        assert a.equals(b), dataset
