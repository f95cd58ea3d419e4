"""How the benchmarks measure: wall seconds and peak resident memory, of this process or a whole process tree."""

from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path

BYTES_PER_KIB = 1024
KIB_PER_MB = 1024  # the benchmarks' MB are MiB
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // BYTES_PER_KIB
SAMPLE_SECONDS = 0.5  # how often a child's process tree is sampled for its memory


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MB  # Linux: KiB


def tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants, in MB (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_KB
        except OSError:
            pass
        todo.extend(children.get(pid, []))
    return total / KIB_PER_MB


def measured(cmd: list[str], log: Path, every: float = SAMPLE_SECONDS) -> dict:
    """Run cmd, sampling its process tree's memory; return seconds, peak RSS and the exit code."""
    start, peak = time.perf_counter(), 0.0
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        while proc.poll() is None:
            peak = max(peak, tree_rss_mb(proc.pid))
            time.sleep(every)
    return {
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak,
        "returncode": proc.returncode,
    }
