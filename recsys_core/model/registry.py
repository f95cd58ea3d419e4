"""Which model a run trained, which one it ranks with, and the blessed one: references, not weights."""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from recsys_core.config import Config
from recsys_core.errors import RecsysError
from recsys_core.io import layout
from recsys_core.io.lake import Lake, write_json_atomically

VERSION_HASH_CHARS = 10  # of the SHA-1 in a version: unique among the versions of one ds
READ_BLOCK = 1 << 24  # bytes hashed at a time from the training files


def model_version(ds: str, config: Config, *arrays, files: tuple[Path, ...] = ()) -> str:
    """Deterministic in ds, config and training data: a rerun on the same inputs gives the same version."""
    h = hashlib.sha1(json.dumps(config.to_dict(), sort_keys=True).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    for path in files:
        with open(path, "rb") as f:
            while block := f.read(READ_BLOCK):
                h.update(block)
    return f"m{ds.replace('-', '')}-{h.hexdigest()[:VERSION_HASH_CHARS]}"


def write_candidate(lake: Lake, ds: str, version: str, path: Path) -> None:
    """Record the model this run trained (judged by the gate before anything uses it)."""
    lake.write_json(
        {"version": version, "path": str(path)}, layout.MODEL_REF, ds, layout.CANDIDATE_REF_FILE
    )


def read_candidate(lake: Lake, ds: str) -> dict:
    return lake.read_json(layout.MODEL_REF, ds, layout.CANDIDATE_REF_FILE)


def write_serving(lake: Lake, ds: str, ref: dict) -> None:
    """Record the model the rest of the run ranks with (the gate's choice)."""
    lake.write_json(ref, layout.MODEL_REF, ds, layout.MODEL_REF_FILE)


def read_serving(lake: Lake, ds: str) -> dict:
    return lake.read_json(layout.MODEL_REF, ds, layout.MODEL_REF_FILE)


def load_serving(lake: Lake, ds: str):
    """(the model the run ranks with, its version)."""
    from recsys_core.model.two_tower import TwoTowerModel

    ref = read_serving(lake, ds)
    return TwoTowerModel.load(ref["path"]), ref["version"]


def read_blessed(models_dir: Path) -> dict | None:
    path = Path(models_dir) / layout.BLESSED_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RecsysError(f"blessed-model registry {path} is not valid JSON: {exc}") from exc


def write_blessed(models_dir: Path, entry: dict) -> Path:
    """Replace the registry in one rename: a reader sees the previous or the new blessed model."""
    return write_json_atomically(Path(models_dir) / layout.BLESSED_FILE, entry)


@contextmanager
def _registry_lock(models_dir: Path):
    """An exclusive lock on the blessed-model registry (a lock file beside it), held by one gate at a
    time on this file system."""
    import fcntl

    Path(models_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(models_dir) / f"{layout.BLESSED_FILE}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def bless_model(models_dir: Path, entry: dict, expected: str | None) -> tuple[bool, str]:
    """Make `entry` (version, path, ds, metrics) the blessed model by compare-and-swap under the
    registry's lock: only if the blessed version is still `expected` (what the gate compared against;
    None: nothing was blessed) and no model of a later ds is blessed, so a backfill of an old date
    never replaces a newer model. Returns (blessed?, why not)."""
    with _registry_lock(models_dir):
        current = read_blessed(models_dir)
        if current and str(current.get("ds", "")) > entry["ds"]:
            return False, (
                f"not blessed: {current['version']} of the later ds {current['ds']} is blessed, and a "
                f"model of ds {entry['ds']} never replaces it"
            )
        found = current["version"] if current else None
        if found != expected:
            return False, (
                f"not blessed: the blessed model changed during the gate (to {found}, compared "
                f"against {expected}); the next run compares against it"
            )
        write_blessed(models_dir, entry)
        return True, ""
