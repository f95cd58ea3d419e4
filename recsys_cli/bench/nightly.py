"""`recsys bench nightly`: the real DAG through Airflow on a large generated data set, night after
night, with each task's seconds and peak memory, and the Spark ALS reference in the same run.

Each night is `recsys run`'s DagRun (`airflow dags test`, the tasks as the DAG defines them: the
jobs as subprocesses, the Spark steps through spark-submit) publishing into the warehouse given. A
sampler walks this process's descendants every half second and adds up the resident memory of
each task's processes (its job, spark-submit's JVM and the JVM's Python workers), found by the step
name on their command lines or their parents'. On a Spark cluster the executors are not the run's
descendants but the worker daemon's: `--spark-master standalone` starts a master and a worker on this
machine (recsys_cli/spark_cluster.py) and the sampler adds up the worker's descendants too, as the
cluster memory of the Spark task whose driver is running. The first night trains the towers in full (no model
is blessed yet); the nights after it warm-start from the blessed model (model/warm_start.py), as
a deployment's nights do between full retrains.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import date, timedelta
from pathlib import Path

from jobs import SPARK_STEPS, TASKS
from recsys_cli.bench.measure import KIB_PER_MB, PAGE_KB, SAMPLE_SECONDS
from recsys_cli.live import rows_text
from recsys_core.io import layout

FIRST_DS = "2026-01-31"
OUTSIDE = "<not a descendant>"


def _processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command line, resident MB) of every process (Linux /proc)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            rss = int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * PAGE_KB / KIB_PER_MB
        except (OSError, IndexError, ValueError):
            continue
        out[int(entry)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmd, rss)
    return out


def task_of(cmd: str) -> str | None:
    """The DAG task a process belongs to, from its command line: `-m jobs.<task>`, `jobs/<task>.py`
    or spark-submit's `--name recsys-<task>`."""
    for task in TASKS:
        if (
            f"jobs.{task} " in f"{cmd} "
            or f"jobs/{task}.py" in cmd
            or f"recsys-{task} " in f"{cmd} "
        ):
            return task
    return None


def descendants(procs: dict[int, tuple[int, str, float]], root: int) -> set[int]:
    """The pids below `root` (not root itself) in `_processes()`' table."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in procs.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, ()))
    return found


class TaskMemory:
    """Peak resident memory per task of the descendants of `root`, sampled in a thread; with
    `cluster_root` (a Spark worker daemon), also the peak of its descendants (the executors and their
    Python workers) per Spark task, while that task alone has a driver running."""

    def __init__(self, root: int, every: float = SAMPLE_SECONDS, cluster_root: int | None = None):
        self.root, self.every, self.cluster_root = root, every, cluster_root
        self.peak_mb: dict[str, float] = {}
        self.cluster_peak_mb: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="task-memory")

    def sample(self) -> dict[str, float]:
        procs = _processes()

        memo: dict[int, str | None] = {self.root: None}  # the root itself is no task's

        def owner(pid: int) -> str | None:
            """The task of a descendant of root (the first named process from root down), else None."""
            chain = []
            while pid not in memo:
                if pid not in procs:  # the chain ended without passing root: not a descendant
                    memo[pid] = OUTSIDE
                    break
                chain.append(pid)
                pid = procs[pid][0]
            found = memo[pid]
            for p in reversed(chain):
                if found != OUTSIDE:
                    found = found or task_of(procs[p][1])
                memo[p] = found
            return None if found == OUTSIDE else found

        totals: dict[str, float] = {}
        for pid, (_, _, rss) in procs.items():
            task = owner(pid)
            if task:
                totals[task] = totals.get(task, 0.0) + rss
        for task, mb in totals.items():
            self.peak_mb[task] = max(self.peak_mb.get(task, 0.0), mb)
        spark_tasks = [task for task in totals if task in SPARK_STEPS]
        if self.cluster_root is not None and len(spark_tasks) == 1:
            executors = sum(procs[pid][2] for pid in descendants(procs, self.cluster_root))
            task = spark_tasks[0]
            self.cluster_peak_mb[task] = max(self.cluster_peak_mb.get(task, 0.0), executors)
        return totals

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> TaskMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def night_ds(night: int) -> str:
    return (date.fromisoformat(FIRST_DS) + timedelta(days=night)).isoformat()


def run_night(
    ds: str, work: Path, home: Path, deployment: dict[str, str], cluster_root: int | None = None
) -> dict:
    """One DagRun; per task: seconds (the job's own), peak memory (and its executors' on a cluster
    whose worker daemon is `cluster_root`), rows out; and the run's wall time."""
    from recsys_cli.airflow_run import run_dag

    start = time.perf_counter()
    with TaskMemory(os.getpid(), cluster_root=cluster_root) as memory:
        code = run_dag(ds, {}, work, home, deployment)
    wall = time.perf_counter() - start
    tasks = {}
    for task in TASKS:
        path = layout.WorkDir(work).step_record(ds, task)
        record = json.loads(path.read_text()) if path.exists() else {}
        tasks[task] = {
            "status": record.get("status", "not run"),
            "seconds": record.get("seconds"),
            "peak_rss_mb": round(memory.peak_mb.get(task, 0.0), 1),
            **(
                {"executors_peak_rss_mb": round(memory.cluster_peak_mb.get(task, 0.0), 1)}
                if cluster_root is not None and task in SPARK_STEPS
                else {}
            ),
            "rows_out": record.get("rows_out"),
            **({"training": record["training"]} if "training" in record else {}),
        }
    return {"ds": ds, "returncode": code, "wall_seconds": round(wall, 1), "tasks": tasks}


STANDALONE = (
    "standalone"  # --spark-master: a master and a worker started on this machine for the run
)


def bench_nightly(
    data: Path,
    work: Path,
    users: int,
    items: int,
    interactions: int,
    warehouse_url: str,
    nights: int = 2,
    spark_master: str = "",
    driver_memory: str = "",
    als: bool = True,
    first_night: tuple[str, ...] = (),
    executor_memory: str = "",
) -> dict:
    """Generate (or reuse) the data, run `nights` consecutive DagRuns, then the ALS reference.
    `first_night`: SECTION.KEY=VALUE settings of the first night only (it trains in full, so that the
    later nights have a blessed model to warm-start from). `spark_master`: "" (the config's,
    local[*]), a master URL, or STANDALONE: a master and a worker on 127.0.0.1 offering every core and
    `executor_memory` (one executor takes it all), whose executors' memory is sampled too."""
    from recsys_cli.bench.scale import DATA_SEED, DRIVER_MEMORY, prepare
    from recsys_cli.spark_cluster import standalone_cluster

    work.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "sizes": prepare(data, users, items, interactions, DATA_SEED),
        "spark_master": spark_master or "local[*]",
        "first_night_settings": list(first_night),
        "nights": [],
    }
    settings = [f"spark.driver_memory={driver_memory or DRIVER_MEMORY}"]
    if spark_master != STANDALONE:
        settings += [f"spark.master={spark_master}"] if spark_master else []
        _run_nights(report, data, work, warehouse_url, nights, settings, first_night)
    else:
        memory = executor_memory or DRIVER_MEMORY
        cores = os.cpu_count() or 1
        report["cluster"] = {"cores": cores, "executor_memory": memory}
        with standalone_cluster(work / "spark-cluster", cores=cores, memory=memory) as cluster:
            settings += [f"spark.master={cluster.url}", f"spark.executor_memory={memory}"]
            _run_nights(
                report, data, work, warehouse_url, nights, settings, first_night, cluster.worker_pid
            )
    if als:
        import sys

        from recsys_cli.bench.measure import measured

        print("ALS reference ...", flush=True)
        cmd = [sys.executable, "-m", "recsys_cli.bench.scale", "als", "--data", str(data)]
        cmd += ["--work", str(work), "--driver-memory", driver_memory or DRIVER_MEMORY]
        report["als_reference"] = measured(cmd, work / "als_reference.log")
        (work / "nightly-report.json").write_text(json.dumps(report, indent=2))
    return report


def _run_nights(
    report: dict,
    data: Path,
    work: Path,
    warehouse_url: str,
    nights: int,
    settings: list[str],
    first_night: tuple[str, ...],
    cluster_root: int | None = None,
) -> None:
    """Run the nights into report["nights"], saving the report after each."""
    deployment = {
        "RECSYS_DATA_DIR": str(data),
        "RECSYS_WORK_DIR": str(work),
        "RECSYS_WAREHOUSE_URL": warehouse_url,
        "RECSYS_CONFIG": "",  # the defaults, as the code ships them
    }
    saved = work / "nightly-report.json"
    for night in range(nights):
        ds = night_ds(night)
        print(f"night {night + 1} of {nights}: ds={ds}", flush=True)
        night_settings = settings + list(first_night if night == 0 else ())
        night_deployment = {**deployment, "RECSYS_DEPLOYMENT_SETTINGS": "\n".join(night_settings)}
        result = run_night(ds, work, work / "airflow", night_deployment, cluster_root)
        report["nights"].append(result)
        saved.write_text(json.dumps(report, indent=2))
        if result["returncode"] != 0:
            raise RuntimeError(f"bench nightly: the DagRun of {ds} failed; see {saved}")


SERVING = ("retrieve_candidates", "rank_candidates")


def print_nightly(report: dict) -> None:
    from recsys_core import columns as C

    counts = report["sizes"]["counts"]
    print(
        f"{counts[C.USERS]:,} users, {counts[C.ITEMS]:,} items, {counts[C.INTERACTIONS]:,} "
        f"interactions; Spark master {report['spark_master']}"
    )
    if "cluster" in report:
        print(
            f"a standalone master and worker on this machine: {report['cluster']['cores']} cores, "
            f"executors of {report['cluster']['executor_memory']}; 'peak RSS MB' is the Airflow "
            "worker's side (the job, spark-submit's driver), 'executors MB' the cluster's"
        )
    for number, night in enumerate(report["nights"]):
        first = report.get("first_night_settings") if number == 0 else None
        with_settings = f" (first night only: {', '.join(first)})" if first else ""
        print(
            f"\nds={night['ds']}: the whole DagRun {night['wall_seconds']:.0f}s wall{with_settings}"
        )
        cluster = "cluster" in report
        print(
            f"{'task':<22}{'status':>9}{'seconds':>9}{'peak RSS MB':>13}"
            + (f"{'executors MB':>14}" if cluster else "")
            + "  rows out"
        )
        for task, t in night["tasks"].items():
            seconds = f"{t['seconds']:.1f}" if t["seconds"] is not None else "-"
            rows = rows_text(t)
            if "training" in t:
                training = t["training"]
                rows = f"{training['kind']} training, {training['new_rows']:,} new rows"
                if "examples_per_second" in training:
                    rows += (
                        f", {training['examples']:,} examples at "
                        f"{training['examples_per_second']:,.0f}/s"
                    )
            executors = t.get("executors_peak_rss_mb")
            on_cluster = "" if not cluster else "-" if executors is None else f"{executors:,.0f}"
            print(
                f"{task:<22}{t['status']:>9}{seconds:>9}{t['peak_rss_mb']:>13,.0f}"
                + (f"{on_cluster:>14}" if cluster else "")
                + f"  {rows}"
            )
        peak = max(t["peak_rss_mb"] for t in night["tasks"].values())
        serving = sum(night["tasks"][s]["seconds"] or 0 for s in SERVING)
        print(f"peak memory of any task: {peak:,.0f} MB; retrieval + ranking {serving:.1f}s")
        if "als_reference" in report:
            als = report["als_reference"]["seconds"]
            print(
                f"ALS reference (fit + recommendForAllUsers): {als:.1f}s, peak "
                f"{report['als_reference']['peak_rss_mb']:,.0f} MB: retrieval + ranking take "
                f"{serving / als:.2f}x its time ({als / max(serving, 1e-9):.2f}x faster)"
            )
