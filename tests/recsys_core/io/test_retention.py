"""Retention: 30 nights of a nightly's output, the cleanup job after each, and disk use stays flat."""

import datetime as dt
import json

import pytest

from jobs import cleanup
from recsys_core.config import RetentionConfig
from recsys_core.errors import ConfigError
from recsys_core.io import layout
from recsys_core.io.lake import Lake
from recsys_core.io.retention import cutoff
from recsys_core.publish.warehouse import open_warehouse
from recsys_core.step_runner import run_job
from tests.recsys_core.publish.test_warehouse import rows, tables

NIGHTS = 30
START = dt.date(2026, 1, 1)
SETTINGS = [
    "retention.lake_days=5",
    "retention.models_kept=2",
    "retention.reports_days=5",
    "retention.warehouse_days=5",
]


def night(work, ds: str, n: int, bless: bool) -> None:
    """What one nightly run leaves: lake partitions, a model, a report, references, a publish."""
    lake = Lake(work / "lake")
    payload = b"x" * 100_000
    for dataset in ("inputs/users", "user_features", "candidates", "recommendations", "validation"):
        part = lake.partition(dataset, ds)
        part.mkdir(parents=True)
        (part / "part-00000.parquet").write_bytes(payload)
    version = f"m{n:02d}"
    model = work / "models" / version
    (model / "evaluations").mkdir(parents=True)
    (model / layout.MODEL_FILE).write_bytes(payload)
    (model / layout.MODEL_META_FILE).write_text(json.dumps({"ds": ds}))
    lake.write_json({"version": version, "path": str(model)}, layout.MODEL_REF, ds, "model.json")
    lake.write_json({"status": "success"}, layout.STEP_RECORDS, ds, "publish.json")
    if bless:
        (work / "models" / "blessed.json").write_text(json.dumps({"version": version, "ds": ds}))
    report = work / "reports" / f"ds={ds}"
    report.mkdir(parents=True)
    (report / "report.html").write_bytes(payload)
    wh = open_warehouse(f"duckdb://{work / 'warehouse.duckdb'}")
    wh.publish(ds, f"run{n}", tables([1, 2, 3], [1, 2]), version)


def disk(work) -> int:
    return sum(
        p.stat().st_size for p in work.rglob("*") if p.is_file() and "warehouse" not in p.name
    )


def test_thirty_nights_with_cleanup_keep_disk_use_flat_and_what_must_stay(tmp_path):
    work = tmp_path / "work"
    sizes = []
    for n in range(NIGHTS):
        ds = (START + dt.timedelta(days=n)).isoformat()
        night(work, ds, n, bless=n < 10)  # the model of night 9 stays blessed from then on
        argv = ["--ds", ds, "--work", str(work)]
        for setting in SETTINGS:
            argv += ["--set", setting]
        assert run_job("cleanup", cleanup.body, argv) == 0
        sizes.append(disk(work))
    # flat once the windows are full (and the blessed model has aged out of them): nights 15 to 30 use
    # the space of night 15, but for each night's step record and model reference (a few hundred bytes)
    assert max(sizes[15:]) <= sizes[14] * 1.01, sizes
    assert sizes[-1] < 0.3 * sum(100_000 * 7 for _ in range(NIGHTS))  # far below keeping it all
    last = (START + dt.timedelta(days=NIGHTS - 1)).isoformat()
    oldest_kept = cutoff(last, 5)
    kept = sorted(p.name for p in (work / "lake" / "candidates").iterdir())
    assert kept[0] == f"ds={oldest_kept}" and len(kept) == 5
    # every night's step record and model reference stay: the report's trends read them
    assert len(list((work / "lake" / layout.STEP_RECORDS).iterdir())) == NIGHTS
    models = sorted(p.name for p in (work / "models").iterdir() if p.is_dir())
    # the blessed model, the models the five kept nights ranked with (each its own here), none else
    assert models == ["m09", "m25", "m26", "m27", "m28", "m29"]
    wh = open_warehouse(f"duckdb://{work / 'warehouse.duckdb'}")
    assert rows(wh, "SELECT min(ds)::VARCHAR, count(DISTINCT ds) FROM recommendations") == [
        (oldest_kept, 5)
    ]
    assert rows(wh, "SELECT count(DISTINCT ds) FROM publish_log") == [(NIGHTS,)]


def test_zero_keeps_everything_and_a_negative_value_is_refused():
    assert cutoff("2026-01-31", 0) is None
    assert cutoff("2026-01-31", 1) == "2026-01-31"
    with pytest.raises(ConfigError, match=r"retention\.lake_days: must be >= 0"):
        RetentionConfig(lake_days=-1)
