"""Named points where tests can kill the process (RECSYS_FAULT=<point>) to prove nothing is lost."""

import os
import signal


def fault_point(name: str) -> None:
    """SIGKILL this process when RECSYS_FAULT names this point: no cleanup, no except, no finally."""
    if os.environ.get("RECSYS_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def spark_task_fault(name: str) -> None:
    """Fail the first attempt of partition 0's task when RECSYS_FAULT names this point (Spark retries it)."""
    if os.environ.get("RECSYS_FAULT") != name:
        return
    from pyspark import TaskContext

    ctx = TaskContext.get()
    if ctx is not None and ctx.partitionId() == 0 and ctx.attemptNumber() == 0:
        raise RuntimeError(f"injected failure at {name} (attempt 0 of partition 0)")
