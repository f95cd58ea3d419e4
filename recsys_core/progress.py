"""Live progress of a running step, for whoever watches the run (`recsys run` shows it as it goes).

While a step runs, step_runner keeps a small JSON file beside the step's record,
<work>/lake/_steps/ds=<ds>/<step>.progress.json: {"step", "started_at", "detail", "updated_at"}. Code
deep in a step says where it is with `note("epoch 2/3: 40%")` (training) or the Spark stage watcher
does (recsys_core/spark.py); nothing is written when no step is running (tests, notebooks). The file
is replaced atomically, so a reader never sees half of it, and removed when the step ends: its
record (`<step>.json`) then says how it ended.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from pathlib import Path

MIN_SECONDS = 1.0  # between two writes of the same step's detail: a tight loop may note freely

_lock = threading.Lock()
_state: dict = {}  # the running step's: path, step, started_at, last write


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _write(content: dict) -> None:
    """Best effort: progress is for watchers, so a full disk or a folder removed under the step (a
    rerun of the ds clears its records) never fails the step itself."""
    path: Path = _state["path"]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(content))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def begin(path: Path, step: str) -> None:
    """The step `step` starts: its progress file is `path` (its folder is made)."""
    with _lock:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # _write will not manage either, and says nothing
        _state.clear()
        _state.update(path=path, step=step, started_at=_now(), written=0.0)
        _write(
            {"step": step, "started_at": _state["started_at"], "detail": "", "updated_at": _now()}
        )


def note(detail: str, force: bool = False) -> None:
    """Where the running step is now; at most one write per MIN_SECONDS unless `force`."""
    with _lock:
        if not _state or (not force and time.monotonic() - _state["written"] < MIN_SECONDS):
            return
        _state["written"] = time.monotonic()
        content = {"step": _state["step"], "started_at": _state["started_at"]}
        _write({**content, "detail": detail, "updated_at": _now()})


def active() -> bool:
    return bool(_state)


def end() -> None:
    """The step ended (its record says how): the progress file goes."""
    with _lock:
        if _state:
            try:
                _state["path"].unlink(missing_ok=True)
            except OSError:
                pass
            _state.clear()


def read(path: Path) -> dict | None:
    """A progress file's content, or None when there is none (not started, or ended)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
