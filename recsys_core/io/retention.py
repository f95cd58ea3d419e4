"""What the nightly keeps and what it deletes (config [retention]), so its disk use stays flat.

Relative to the run's ds: lake partitions of ds older than `lake_days` (the inputs' snapshots,
features, embeddings, candidates, recommendations, validation reports and their Data Docs), HTML
reports older than `reports_days`, and model folders beyond the `models_kept` newest, never the
blessed model nor one a kept partition ranked with. The step records, model references and gate
evaluations of every night are small JSON files and stay: the report's trends read them. A value
of 0 keeps everything of its kind.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from recsys_core.config import RetentionConfig
from recsys_core.io import layout

log = logging.getLogger(__name__)
# lake datasets of a few hundred bytes per night that the trends and the gate's history read
KEPT_DATASETS = (layout.STEP_RECORDS, layout.MODEL_REF, layout.MODEL_EVALUATION)


@dataclass(frozen=True)
class Removed:
    lake_partitions: int
    reports: int
    models: int
    bytes: int


def cutoff(ds: str, days: int) -> str | None:
    """The oldest ds kept when keeping `days` days up to ds; None keeps everything (days 0)."""
    if days <= 0:
        return None
    return (dt.date.fromisoformat(ds) - dt.timedelta(days=days - 1)).isoformat()


def _ds_of(folder: Path) -> str | None:
    name = folder.name
    return name[3:] if name.startswith("ds=") and len(name) == 13 else None


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def old_partitions(root: Path, oldest_kept: str, skip: tuple[str, ...] = ()) -> list[Path]:
    """Every ds=... folder under root (any depth, not inside another partition) older than oldest_kept."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    for folder in sorted(root.rglob("ds=*")):
        ds = _ds_of(folder)
        rel = folder.relative_to(root).parts
        if ds is None or not folder.is_dir() or rel[0] in skip:
            continue
        if any(part.startswith("ds=") for part in rel[:-1]):
            continue
        if ds < oldest_kept:
            found.append(folder)
    return found


def models_to_remove(work: layout.WorkDir, keep: int, protected: set[str]) -> list[Path]:
    """Model folders beyond the `keep` newest by their training ds, never one of `protected`."""
    if keep <= 0 or not work.models.is_dir():
        return []
    models = []
    for folder in work.models.iterdir():
        meta = folder / layout.MODEL_META_FILE
        if not folder.is_dir() or folder.name.startswith(".") or not meta.exists():
            continue
        trained = str(json.loads(meta.read_text()).get("ds", ""))
        models.append((trained, folder.name, folder))
    models.sort(reverse=True)
    return [f for _, name, f in models[keep:] if name not in protected]


def protected_models(work: layout.WorkDir, oldest: str | None) -> set[str]:
    """The blessed model and every model a kept night (ds >= oldest; all when None) ranked with."""
    names = set()
    blessed = work.models / layout.BLESSED_FILE
    if blessed.exists():
        names.add(json.loads(blessed.read_text()).get("version", ""))
    refs = work.lake / layout.MODEL_REF
    for ref in refs.glob(f"ds=*/{layout.MODEL_REF_FILE}") if refs.is_dir() else []:
        if oldest is None or (_ds_of(ref.parent) or "") >= oldest:
            names.add(json.loads(ref.read_text()).get("version", ""))
    return names - {""}


def clean(work_dir: Path, ds: str, cfg: RetentionConfig) -> Removed:
    """Delete what the retention settings no longer keep, relative to ds; returns what went."""
    work = layout.WorkDir(work_dir)
    doomed: list[tuple[str, Path]] = []
    lake_oldest = cutoff(ds, cfg.lake_days)
    if lake_oldest:
        doomed += [("lake", p) for p in old_partitions(work.lake, lake_oldest, KEPT_DATASETS)]
    oldest = cutoff(ds, cfg.reports_days)
    if oldest:
        doomed += [("reports", p) for p in old_partitions(work.reports, oldest)]
    protected = protected_models(work, lake_oldest)
    doomed += [("models", p) for p in models_to_remove(work, cfg.models_kept, protected)]
    counts = {"lake": 0, "reports": 0, "models": 0}
    freed = 0
    for kind, path in doomed:
        freed += _size(path)
        shutil.rmtree(path, ignore_errors=True)
        counts[kind] += 1
        log.info("retention: removed %s", path)
    return Removed(counts["lake"], counts["reports"], counts["models"], freed)
