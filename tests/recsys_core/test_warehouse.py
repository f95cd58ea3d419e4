"""Tests of publishing to the DuckDB warehouse: one transaction per ds, replace not append."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from recsys_core.errors import ConfigError
from recsys_core.warehouse import DuckDBWarehouse, duckdb_path, open_warehouse


def recommendations(
    user_ids: list[int], score: float = 0.5, version: str = "v1", run: str = "r1"
) -> pa.Table:
    n = len(user_ids)
    return pa.table(
        {
            "user_id": pa.array(user_ids, pa.int64()),
            "rank": pa.array(range(1, n + 1), pa.int32()),
            "item_id": pa.array([100 + u for u in user_ids], pa.int64()),
            "score": pa.array([score] * n, pa.float64()),
            "predicted_rating": pa.array([3.0] * n, pa.float64()),
            "reason": pa.array(["top_genre:Drama"] * n),
            "model_version": pa.array([version] * n),
            "run_id": pa.array([run] * n),
        }
    )


def neighbors(item_ids: list[int], distance: float = 1.0) -> pa.Table:
    return pa.table(
        {
            "item_id": pa.array(item_ids, pa.int64()),
            "rank": pa.array([1] * len(item_ids), pa.int32()),
            "neighbor_id": pa.array([i + 1 for i in item_ids], pa.int64()),
            "distance": pa.array([distance] * len(item_ids), pa.float64()),
        }
    )


def items(item_ids: list[int], title: str = "T") -> pa.Table:
    return pa.table(
        {
            "item_id": pa.array(item_ids, pa.int64()),
            "title": pa.array([f"{title}{i}" for i in item_ids]),
            "year": pa.array([1999] + [None] * (len(item_ids) - 1), pa.int32()),
            "genres": pa.array(
                [["Drama", "Comedy"]] + [[]] * (len(item_ids) - 1), pa.list_(pa.string())
            ),
        }
    )


def tables(
    users: list[int], item_ids: list[int], score: float = 0.5, version: str = "v1", run: str = "r1"
):
    return {
        "recommendations": recommendations(users, score, version, run),
        "item_neighbors": neighbors(item_ids),
        "items": items(item_ids),
    }


@pytest.fixture
def wh(tmp_path) -> DuckDBWarehouse:
    return DuckDBWarehouse(f"duckdb:///{tmp_path}/wh/recs.duckdb")


def rows(wh: DuckDBWarehouse, sql: str) -> list[tuple]:
    return [tuple(r) for r in wh.query(sql).itertuples(index=False)]


def snapshot(wh: DuckDBWarehouse) -> dict[str, list[tuple]]:
    return {
        "recommendations": rows(
            wh, "SELECT ds::VARCHAR, * EXCLUDE (ds) FROM recommendations ORDER BY ALL"
        ),
        "item_neighbors": rows(
            wh, "SELECT ds::VARCHAR, * EXCLUDE (ds) FROM item_neighbors ORDER BY ALL"
        ),
        "items": rows(wh, "SELECT ds::VARCHAR, item_id, title FROM items ORDER BY ALL"),
        "publish_log": rows(
            wh, "SELECT ds::VARCHAR, run_id, table_name, rows FROM publish_log ORDER BY ALL"
        ),
    }


def test_publish_creates_the_tables_the_log_and_the_latest_view(wh):
    counts = wh.publish("2024-03-01", "r1", "v1", tables([1, 2, 3], [10, 11]))
    assert counts == {"recommendations": 3, "item_neighbors": 2, "items": 2}
    assert wh.path.is_file()
    names = wh.query(
        "SELECT table_name, table_type FROM information_schema.tables ORDER BY table_name"
    )
    assert dict(zip(names.table_name, names.table_type)) == {
        "item_neighbors": "BASE TABLE",
        "items": "BASE TABLE",
        "publish_log": "BASE TABLE",
        "recommendations": "BASE TABLE",
        "recommendations_latest": "VIEW",
    }
    assert rows(
        wh,
        "SELECT ds::VARCHAR, user_id, rank, item_id, model_version FROM recommendations ORDER BY user_id",
    ) == [
        ("2024-03-01", 1, 1, 101, "v1"),
        ("2024-03-01", 2, 2, 102, "v1"),
        ("2024-03-01", 3, 3, 103, "v1"),
    ]
    assert rows(wh, "SELECT item_id, year, genres FROM items ORDER BY item_id")[0][:2] == (10, 1999)
    assert list(rows(wh, "SELECT genres FROM items ORDER BY item_id")[0][0]) == ["Drama", "Comedy"]
    assert rows(
        wh, "SELECT table_name, rows, model_version FROM publish_log ORDER BY table_name"
    ) == [
        ("item_neighbors", 2, "v1"),
        ("items", 2, "v1"),
        ("recommendations", 3, "v1"),
    ]


def test_republishing_the_same_ds_replaces_its_rows(wh):
    wh.publish("2024-03-01", "r1", "v1", tables([1, 2, 3], [10, 11, 12], score=0.5))
    wh.publish(
        "2024-03-01",
        "r2",
        "v2",
        tables([7, 8, 9], [20, 21, 22], score=0.25, version="v2", run="r2"),
    )
    assert rows(wh, "SELECT count(*) FROM recommendations") == [(3,)]
    assert rows(wh, "SELECT count(*) FROM item_neighbors") == [(3,)]
    assert rows(wh, "SELECT count(*) FROM items") == [(3,)]
    assert rows(
        wh, "SELECT user_id, score, model_version, run_id FROM recommendations ORDER BY user_id"
    ) == [
        (7, 0.25, "v2", "r2"),
        (8, 0.25, "v2", "r2"),
        (9, 0.25, "v2", "r2"),
    ]
    assert rows(wh, "SELECT item_id FROM items ORDER BY item_id") == [(20,), (21,), (22,)]
    assert rows(wh, "SELECT item_id FROM item_neighbors ORDER BY item_id") == [(20,), (21,), (22,)]


def test_two_ds_coexist_and_latest_shows_the_newest_ds_only(wh):
    wh.publish("2024-03-02", "r2", "v2", tables([4, 5], [10], version="v2"))
    wh.publish("2024-03-01", "r1", "v1", tables([1, 2, 3], [10]))  # an older ds published later
    assert rows(
        wh, "SELECT ds::VARCHAR, count(*) FROM recommendations GROUP BY ds ORDER BY ds"
    ) == [
        ("2024-03-01", 3),
        ("2024-03-02", 2),
    ]
    assert rows(
        wh,
        "SELECT ds::VARCHAR, user_id, model_version FROM recommendations_latest ORDER BY user_id",
    ) == [
        ("2024-03-02", 4, "v2"),
        ("2024-03-02", 5, "v2"),
    ]
    assert rows(wh, "SELECT ds::VARCHAR, count(*) FROM items GROUP BY ds ORDER BY ds") == [
        ("2024-03-01", 1),
        ("2024-03-02", 1),
    ]


def test_a_publish_failing_midway_rolls_back_and_leaves_earlier_rows_unchanged(wh):
    wh.publish("2024-03-01", "r1", "v1", tables([1, 2, 3], [10, 11]))
    before = snapshot(wh)
    bad = recommendations([7, 8]).set_column(3, "score", pa.array(["not a number", "x"]))
    broken = {
        "item_neighbors": neighbors([30, 31, 32], distance=9.0),  # deleted and rewritten first ...
        "items": items([30, 31, 32], title="new"),
        "recommendations": bad,  # ... then this insert fails
    }
    with pytest.raises(duckdb.Error, match="(?i)conver|cast"):
        wh.publish("2024-03-01", "r2", "v2", broken)
    assert snapshot(wh) == before
    # a failed publish of a new ds leaves no trace of that ds either
    with pytest.raises(duckdb.Error):
        wh.publish("2024-03-05", "r3", "v3", broken)
    assert snapshot(wh) == before
    assert rows(wh, "SELECT DISTINCT ds::VARCHAR FROM recommendations_latest") == [("2024-03-01",)]


def test_duckdb_path_parses_absolute_and_relative_urls():
    assert duckdb_path("duckdb:///abs/x.duckdb") == Path("/abs/x.duckdb")
    assert duckdb_path("duckdb://rel/x.duckdb") == Path("rel/x.duckdb")


@pytest.mark.parametrize(
    "url", ["sqlite:///abs/x.db", "postgresql://host/db", "duckdb://", "/abs/x.duckdb"]
)
def test_duckdb_path_rejects_other_urls(url):
    with pytest.raises(ConfigError, match="warehouse URL"):
        duckdb_path(url)


def test_open_warehouse_rejects_unsupported_schemes():
    with pytest.raises(ConfigError, match="unsupported scheme"):
        open_warehouse("postgresql://host/db")
    assert isinstance(open_warehouse("duckdb:///tmp/x.duckdb"), DuckDBWarehouse)


def test_query_on_a_missing_warehouse_raises_and_creates_nothing(tmp_path):
    wh = DuckDBWarehouse(f"duckdb:///{tmp_path}/none/recs.duckdb")
    with pytest.raises(ConfigError, match="no warehouse at"):
        wh.query("SELECT 1")
    assert not (tmp_path / "none").exists()
