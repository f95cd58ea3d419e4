"""A real Spark standalone cluster on 127.0.0.1: one master and one worker, from the pyspark installation.

`recsys bench nightly --spark-master standalone` runs its nights on one, and the integration test of a
rerun on a cluster starts one; a deployment runs the same daemons from the image (docker-compose.yml).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pyspark


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_log(path: Path, text: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise RuntimeError(
        f"waited for {text!r} in {path}: {path.read_text(errors='replace')[-3000:] if path.exists() else ''}"
    )


MASTER = "org.apache.spark.deploy.master.Master"
WORKER = "org.apache.spark.deploy.worker.Worker"


@dataclass(frozen=True)
class StandaloneCluster:
    url: str  # spark://127.0.0.1:<port>, the master
    worker_pid: int  # the worker daemon: the executors it launches are its descendants
    worker_log: Path


@contextlib.contextmanager
def standalone_cluster(folder: Path, cores: int = 2, memory: str = "2g"):
    """Start `spark-class ...Master` and `...Worker` (offering `cores` and `memory` to applications)
    on 127.0.0.1 with their logs in `folder`, yield the StandaloneCluster, stop both."""
    spark_home = Path(pyspark.__file__).parent
    spark_class = str(spark_home / "bin" / "spark-class")
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_WORKER_DIR": str(folder / "worker"),
    }
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    folder.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []

    def daemon(name: str, main_class: str, args: list[str], ready: str) -> subprocess.Popen:
        """Start one daemon with its log in folder/<name>.log; return once the log says `ready`."""
        log = folder / f"{name}.log"
        cmd = [spark_class, main_class, *args, "--webui-port", str(free_port())]
        proc = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        procs.append(proc)
        _wait_for_log(log, ready, proc, 120)
        return proc

    try:
        master_args = ["--host", "127.0.0.1", "--port", str(port)]
        daemon("master", MASTER, master_args, "I have been elected leader")
        worker_args = [url, "--host", "127.0.0.1", "--cores", str(cores), "--memory", memory]
        worker = daemon("worker", WORKER, worker_args, "Successfully registered with master")
        worker_log = folder / "worker.log"
        yield StandaloneCluster(url, worker.pid, worker_log)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
