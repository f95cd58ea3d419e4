"""`recsys bench similarity` on a small catalogue: every method runs, figures are printed, and the
kernel finds FAISS's exact neighbors (speed is printed, never asserted)."""

import json

import numpy as np
import pytest

from recsys_cli.bench.similarity import unit_vectors
from recsys_cli.main import main


@pytest.mark.slow
def test_bench_similarity_prints_figures_and_agrees_with_faiss(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "similarity",
                "--items",
                "3000",
                "--dim",
                "16",
                "--k",
                "5",
                "--spark-items",
                "2500",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    for method in ("kernel", "faiss", "faiss_ip", "matmul"):
        assert method in printed
    assert "vs FAISS L2" in printed and "vs FAISS IP" in printed and "peak RSS MB" in printed
    report = json.loads(out.read_text())
    # for unit vectors the largest inner products are the nearest by distance: the same neighbours
    assert report["same_neighbors_as_faiss"] > 0.999
    assert report["same_neighbors_as_faiss_ip"] > 0.999
    for r in report["methods"].values():
        assert r["seconds"] > 0 and r["peak_rss_mb"] >= r["rss_before_mb"] > 0
    # the Spark job ran on its own 2,500 items: k neighbor rows each, its process tree measured
    job = report["spark_job"]
    assert job["items"] == 2500 and job["rows_out"] == 2500 * 5 and job["returncode"] == 0
    assert job["peak_rss_mb"] > 100 and "Spark job item_similarity on 2,500 items" in printed


def test_bench_inputs_are_seeded_unit_vectors():
    a, b = unit_vectors(50, 8, seed=1), unit_vectors(50, 8, seed=1)
    assert np.array_equal(a, b) and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-6)


@pytest.mark.slow
def test_bench_training_trains_both_methods_on_the_same_examples(tmp_path, capsys):
    out = tmp_path / "training.json"
    assert (
        main(
            [
                "bench",
                "training",
                "--examples",
                "3000",
                "--softmax-examples",
                "2000",
                "--users",
                "300",
                "--items",
                "50",
                "--batch-size",
                "64",
                "--repeat",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "in_memory" in printed and "stream" in printed and "vs in-memory" in printed
    assert "softmax_stream/softmax_in_memory examples/s" in printed
    report = json.loads(out.read_text())
    runs = {r["method"]: r for r in report["runs"]}
    assert set(runs) == {"in_memory", "stream", "softmax_in_memory", "softmax_stream"}
    assert runs["in_memory"]["examples"] == runs["stream"]["examples"] == 3000  # the same epoch
    assert runs["softmax_in_memory"]["examples"] == runs["softmax_stream"]["examples"] == 2000
    assert [r["ratio"] for r in report["ratios"]] == [
        "stream/in_memory examples/s",
        "softmax_stream/softmax_in_memory examples/s",
    ]
    for r in runs.values():
        assert (
            r["examples_per_second"] > 0
            and np.isfinite(r["loss"])
            and r["peak_rss_mb"] >= r["rss_before_mb"]
        )
    # random labels with a 20% base rate: a trained model's log loss is near the base rate's 0.50
    assert all(0.3 < runs[m]["loss"] < 0.8 for m in ("in_memory", "stream"))


def test_bench_training_softmax_methods_train_the_same_examples_and_learn(tmp_path, capsys):
    """The two softmax methods, each through the entry its child process runs, on a tiny data set:
    the same epoch of examples, and the in-memory reference learns (its mean loss over the epoch
    is below log(B + S), the loss of logits equal for all B + S candidates)."""
    from recsys_cli.bench.training import SOFTMAX_METHODS, write_softmax_data
    from recsys_cli.bench.training import main as run_one
    from recsys_core.config import ModelConfig

    interactions, batch = 2000, 64
    write_softmax_data(tmp_path, users=200, items=80, interactions=interactions, seed=0)
    runs = {}
    for method in SOFTMAX_METHODS:
        assert run_one([method, "--folder", str(tmp_path), "--batch-size", str(batch)]) == 0
        runs[method] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    memory, stream = runs["softmax_in_memory"], runs["softmax_stream"]
    assert memory["examples"] == stream["examples"] == interactions  # every one rated 4 or 5
    assert memory["examples_per_second"] > 0 and stream["examples_per_second"] > 0
    uniform = np.log(batch + ModelConfig().sampled_negatives)
    assert np.isfinite(memory["loss"]) and memory["loss"] < uniform
    assert memory["loss"] < memory["first_batch_loss"]  # below the untrained towers' loss too
    assert np.isfinite(stream["loss"]) and stream["loss"] < uniform
    # the same objective on the same examples: the two epochs' mean losses agree closely
    assert abs(memory["loss"] - stream["loss"]) < 0.1 * stream["loss"]


def test_scale_bench_measures_a_process_tree_and_generates_its_data_once(tmp_path):
    import subprocess
    import sys

    from recsys_cli.bench.measure import measured, tree_rss_mb
    from recsys_cli.bench.scale import STAGES, prepare

    # a parent holding ~0 MB whose child holds 200 MB: the tree's peak must see the child
    grow = "import subprocess,sys; subprocess.run([sys.executable,'-c','b=bytearray(200*2**20); import time; time.sleep(1.5)'])"
    result = measured([sys.executable, "-c", grow], tmp_path / "log.txt", every=0.1)
    assert result["returncode"] == 0 and result["peak_rss_mb"] > 200
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2)"]) as proc:
        assert 0 < tree_rss_mb(proc.pid) < 200
        proc.kill()
    data = tmp_path / "in"
    first = prepare(data, 30, 20, 300, seed=1)
    assert first["counts"]["interactions"] == 300 and first["generate_seconds"] is not None
    again = prepare(data, 30, 20, 300, seed=1)
    assert again["generate_seconds"] is None  # the same sizes: reused, not generated again
    assert STAGES[0] == "validate_inputs"  # the later stages read its snapshots, as in the DAG


def test_scale_bench_rerunning_only_some_stages_keeps_the_earlier_figures_marked(tmp_path, capsys):
    from recsys_cli.bench.scale import bench_scale, print_scale

    data, work = tmp_path / "in", tmp_path / "work"
    work.mkdir()
    earlier = {"seconds": 10.0, "peak_rss_mb": 500.0, "returncode": 0}
    stages = {
        "retrieve_candidates": earlier,
        "rank_candidates": earlier,
        "als_reference": {**earlier, "seconds": 40.0},
    }
    (work / "scale-report.json").write_text(json.dumps({"stages": stages}))
    report = bench_scale(
        data, work, 30, 20, 300, only=[]
    )  # nothing rerun: every figure is the earlier one
    assert set(report["stages"]) == set(stages) and all(
        r["earlier_run"] for r in report["stages"].values()
    )
    print_scale(report)
    printed = capsys.readouterr().out
    assert (
        printed.count("(earlier run)") == 3
        and "retrieval + ranking: 20.0s" in printed
        and "2.00x faster" in printed
    )


def test_bench_publish_job_publishes_a_synthetic_night_and_prints_both_peaks(tmp_path, capsys):
    """The publish step on 3,000 users x 20 recommendations against 150,000 interactions, into DuckDB:
    every row lands, and the figures of the step and of the read-whole reference are printed."""
    import duckdb

    users, work = 3000, tmp_path / "work"
    url = f"duckdb://{tmp_path / 'wh.duckdb'}"
    out = tmp_path / "publish.json"
    args = ["bench", "publish", "--job", str(users), "--work", str(work), "--url", url]
    assert main(args + ["--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "60,000 recommendations of 3,000 users against 150,000 interactions" in printed
    assert "peak memory, publish / reference:" in printed
    report = json.loads(out.read_text())
    assert report["publish"]["peak_rss_mb"] > 0 and report["reference"]["peak_rss_mb"] > 0
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        per_user = con.execute(
            "SELECT count(*), count(DISTINCT user_id), max(rank) FROM recommendations"
        ).fetchone()
    assert per_user == (users * 20, users, 20)


def test_bench_nightly_adds_up_each_tasks_processes_found_by_their_command_lines():
    """A job process named as the DAG runs it (`jobs/<task>.py`) with a child holding 200 MB: the
    sampler counts the child's memory for that task, and nothing for a task that is not running."""
    import os
    import subprocess
    import sys
    import time

    from recsys_cli.bench.nightly import TaskMemory, task_of

    assert task_of("python -m jobs.publish --ds 2026-01-31") == "publish"
    assert task_of("java ... --name recsys-rank_candidates --class x") == "rank_candidates"
    assert task_of("python /x/jobs/item_similarity.py --ds 1") == "item_similarity"
    assert task_of("python -m jobs.publish_extra") is None and task_of("airflow scheduler") is None
    child = (
        "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(30)"
    )
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    proc = subprocess.Popen([sys.executable, "-c", parent, "jobs/item_similarity.py"])
    try:
        memory = TaskMemory(root=os.getpid())
        deadline = time.time() + 20
        while memory.peak_mb.get("item_similarity", 0) < 200 and time.time() < deadline:
            memory.sample()
            time.sleep(0.2)
    finally:
        proc.kill()
    assert memory.peak_mb["item_similarity"] >= 200
    # only this test's descendants count (the machine may run other jobs)
    assert set(memory.peak_mb) == {"item_similarity"}


def test_bench_nightly_counts_a_cluster_workers_executors_for_the_spark_task_whose_driver_runs():
    """A stand-in worker daemon (not our descendant in the sampler's eyes: it is given as the cluster
    root) whose child holds 200 MB, while one Spark task's driver runs under us: the executors' 200 MB
    go to that task's cluster memory, not to its own (the Airflow worker's) memory."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from recsys_cli.bench.nightly import TaskMemory, _processes, descendants

    child = (
        "import time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(30)"
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])",
        ],
        start_new_session=True,  # its child too is killed at the end, as a group
    )
    driver = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)", "jobs/rank_candidates.py"]
    )
    try:
        memory = TaskMemory(root=os.getpid(), cluster_root=worker.pid)
        deadline = time.time() + 20
        while memory.cluster_peak_mb.get("rank_candidates", 0) < 200 and time.time() < deadline:
            memory.sample()
            time.sleep(0.2)
        below_worker = descendants(_processes(), worker.pid)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        driver.kill()
    assert len(below_worker) == 1 and worker.pid not in below_worker
    assert memory.cluster_peak_mb["rank_candidates"] >= 200
    assert set(memory.cluster_peak_mb) == {"rank_candidates"}
    # the worker is our child here, but its tree is named by no task: it is not the driver's memory
    assert memory.peak_mb["rank_candidates"] < 200
