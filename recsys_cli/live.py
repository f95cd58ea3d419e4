"""What `recsys run` and `recsys backfill` show while a DagRun goes on: each task as it starts and
ends (status, seconds, rows) and, for the running one, where it is (the epoch, the Spark stage).

The jobs write it (recsys_core/progress.py: `<step>.progress.json` while running, `<step>.json` when
ended); `watch` reads those files every second. On a terminal the view is a live table (rich);
in a log or CI, plain lines: one as a task starts, one as it ends, and its progress at most every
DETAIL_SECONDS in between.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from recsys_core import progress
from recsys_core.io.layout import STEP_PROGRESS_SUFFIX

POLL_SECONDS = 1.0
DETAIL_SECONDS = 30.0  # plain output: a running task's progress line at most this often


@dataclass(frozen=True)
class StepState:
    step: str
    status: str  # waiting, running, or the record's: success, failed, cancelled
    seconds: float | None = None  # elapsed while running, the record's once ended
    detail: str = ""  # running: where it is; ended: rows out or the error


def rows_text(record: dict) -> str:
    """A record's rows out as `table=1,234, ...`."""
    return ", ".join(
        f"{k}={v:,}" if isinstance(v, int) else f"{k}={v}"
        for k, v in (record.get("rows_out") or {}).items()
    )


def step_states(
    steps_dir: Path, steps: tuple[str, ...], now: float | None = None
) -> list[StepState]:
    """Each step's state from its record and progress files in steps_dir."""
    now = time.time() if now is None else now
    states = []
    for step in steps:
        record_path = steps_dir / f"{step}.json"
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record = None
        running = progress.read(steps_dir / f"{step}{STEP_PROGRESS_SUFFIX}")
        # a retry runs while the attempt before it still has its (failed) record: newer wins
        if record is not None and (
            running is None or str(running.get("started_at")) <= str(record.get("ended_at", ""))
        ):
            detail = (
                rows_text(record) if record.get("status") == "success" else record.get("error", "")
            )
            states.append(StepState(step, record.get("status", "?"), record.get("seconds"), detail))
            continue
        if running is None:
            states.append(StepState(step, "waiting"))
            continue
        started = dt.datetime.fromisoformat(running["started_at"]).timestamp()
        states.append(
            StepState(step, "running", max(now - started, 0.0), running.get("detail", ""))
        )
    return states


class PlainLines:
    """A line per change: a task started, its progress (at most every DETAIL_SECONDS), it ended."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.seen: dict[str, StepState] = {}
        self.detail_at: dict[str, float] = {}

    def _line(self, text: str) -> None:
        print(f"  {dt.datetime.now():%H:%M:%S} {text}", file=self.out, flush=True)

    def update(self, states: list[StepState]) -> None:
        now = time.monotonic()
        for s in states:
            before = self.seen.get(s.step)
            if s.status == "waiting" or (before and before.status == s.status != "running"):
                continue
            if s.status == "running":
                if before is None or before.status != "running":
                    self._line(f"{s.step}: started")
                if s.detail and (before is None or s.detail != before.detail):
                    if now - self.detail_at.get(s.step, -DETAIL_SECONDS) >= DETAIL_SECONDS:
                        self.detail_at[s.step] = now
                        self._line(f"{s.step}: {s.detail}")
            else:  # ended since the last look (or started and ended between two looks)
                self._line(f"{s.step}: {s.status} in {s.seconds or 0:.1f}s  {s.detail}".rstrip())
            self.seen[s.step] = s

    def close(self) -> None:
        pass


class LiveTable:
    """A table redrawn in place (rich), gone when the run ends: the summary follows it."""

    def __init__(self, title: str):
        from rich.console import Console
        from rich.live import Live

        self.title = title
        self.live = Live(console=Console(), refresh_per_second=2, transient=True)
        self.live.start()

    def update(self, states: list[StepState]) -> None:
        from rich.table import Table

        table = Table(title=self.title, title_justify="left")
        for column, justify in (("task", "left"), ("status", "left"), ("seconds", "right")):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        table.add_column("progress / rows out", overflow="fold")
        style = {"running": "bold yellow", "success": "green", "waiting": "dim"}
        for s in states:
            seconds = "" if s.seconds is None else f"{s.seconds:.1f}"
            row_style = style.get(s.status, "bold red")
            table.add_row(s.step, s.status, seconds, s.detail, style=row_style)
        self.live.update(table)

    def close(self) -> None:
        self.live.stop()


def watch(
    proc: subprocess.Popen, steps_dir: Path, steps: tuple[str, ...], title: str, live: bool
) -> int:
    """Show the steps' states until `proc` (the DagRun) exits; its return code."""
    display = LiveTable(title) if live else PlainLines()
    try:
        while proc.poll() is None:
            display.update(step_states(steps_dir, steps))
            time.sleep(POLL_SECONDS)
        display.update(step_states(steps_dir, steps))
    except BaseException:  # Ctrl-C, or a fault of the view: the run is not left behind, orphaned
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    finally:
        display.close()
    return proc.returncode


SAY_SECONDS = 2.0  # a long command's plain progress lines: at most this often


@contextlib.contextmanager
def reporter(live: bool) -> Iterator[Callable[[str], None]]:
    """What a long command (generate, ingest) calls with where it is: on a terminal one status
    line redrawn in place; elsewhere plain lines, at most every SAY_SECONDS (a table's "... rows
    written" always shows)."""
    if live:
        from rich.console import Console

        with Console().status("starting ...") as status:
            yield lambda text: status.update(text)
        return
    said = [-SAY_SECONDS]

    def say(text: str) -> None:
        now = time.monotonic()
        if (
            "written" in text
            and "of" not in text.split("written")[0]
            or now - said[0] >= SAY_SECONDS
        ):
            said[0] = now
            print(f"  {dt.datetime.now():%H:%M:%S} {text}", flush=True)

    yield say
