"""Publishing to both warehouse backends: write-audit-publish, one transaction per ds, replace not append."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pytest

from recsys_core.errors import AuditError, ConfigError
from recsys_core.publish.duckdb_store import DuckDBWarehouse, duckdb_path
from recsys_core.publish.warehouse import checksum, open_warehouse

DB_ERRORS = (duckdb.Error, psycopg.Error)  # what each backend raises when a value cannot be loaded


def recommendations(
    user_ids: list[int], score: float = 0.5, version: str = "v1", run: str = "r1"
) -> pa.Table:
    n = len(user_ids)
    return pa.table(
        {
            "user_id": pa.array(user_ids, pa.int64()),
            "rank": pa.array([1] * n, pa.int32()),
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
                [["Drama", 'Sci-Fi "B"']] + [[]] * (len(item_ids) - 1), pa.list_(pa.string())
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


@pytest.fixture(params=["duckdb", "postgres"])
def wh(request, tmp_path):
    if request.param == "duckdb":
        return open_warehouse(f"duckdb://{tmp_path}/wh/recs.duckdb")
    return open_warehouse(request.getfixturevalue("pg_url"))


def rows(wh, sql: str, params=()) -> list[tuple]:
    return [tuple(r) for r in wh.query(sql, params).itertuples(index=False)]


def snapshot(wh) -> dict[str, list[tuple]]:
    def day(v):
        return v.isoformat() if isinstance(v, dt.date) else str(v)[:10]

    return {
        "recommendations": sorted(
            (day(r[0]), *r[1:])
            for r in rows(
                wh,
                "SELECT ds, user_id, rank, item_id, score, reason, model_version, run_id FROM recommendations",
            )
        ),
        "item_neighbors": sorted(
            (day(r[0]), *r[1:])
            for r in rows(wh, "SELECT ds, item_id, rank, neighbor_id, distance FROM item_neighbors")
        ),
        "items": sorted(
            (day(r[0]), *r[1:]) for r in rows(wh, "SELECT ds, item_id, title FROM items")
        ),
        "publish_log": sorted(
            (day(r[0]), *r[1:])
            for r in rows(wh, "SELECT ds, run_id, table_name, rows, checksum FROM publish_log")
        ),
    }


def test_publish_creates_tables_log_and_latest_view(wh):
    result = wh.publish("2024-03-01", "r1", tables([1, 2, 3], [10, 11]), "v1")
    assert result.status == "published"
    assert result.rows == {"recommendations": 3, "item_neighbors": 2, "items": 2}
    assert rows(wh, "SELECT count(*) FROM recommendations_latest") == [(3,)]
    log = rows(
        wh, "SELECT table_name, rows, checksum, model_version FROM publish_log ORDER BY table_name"
    )
    assert [r[:2] for r in log] == [("item_neighbors", 2), ("items", 2), ("recommendations", 3)]
    assert log[2][2] == checksum(recommendations([1, 2, 3])) and log[2][3] == "v1"


def test_tables_and_columns_carry_comments_for_analysts(wh):
    wh.publish("2024-03-01", "r1", tables([1], [10]), "v1")
    if wh.dialect == "duckdb":
        table = rows(
            wh, "SELECT comment FROM duckdb_tables() WHERE table_name = 'recommendations'"
        )[0][0]
        column = rows(
            wh,
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'recommendations' "
            "AND column_name = 'predicted_rating'",
        )[0][0]
    else:
        table = rows(wh, "SELECT obj_description('recommendations'::regclass)")[0][0]
        column = rows(wh, "SELECT col_description('recommendations'::regclass, 6)")[0][0]
    assert "(ds, user_id, rank) is unique" in table
    assert "rating scale" in column


def test_list_columns_round_trip_with_quotes(wh):
    wh.publish("2024-03-01", "r1", tables([1], [10, 11]), "v1")
    genres = rows(wh, "SELECT genres FROM items WHERE item_id = 10")[0][0]
    assert list(genres) == ["Drama", 'Sci-Fi "B"']
    assert rows(wh, "SELECT year FROM items WHERE item_id = 11") == [(None,)]


def test_parquet_files_publish_in_small_batches_as_the_same_rows_and_checksum(
    wh, tmp_path, monkeypatch
):
    """What the publish job passes: Arrow datasets over Parquet files, streamed in batches (2 rows
    here, so list columns and sums cross batch boundaries); the rows and the checksum are those of
    the same tables given whole."""
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    import recsys_core.publish.warehouse as warehouse

    whole = tables([1, 2, 3, 4, 5], [10, 11, 12, 13, 14])
    whole["items"] = items([10, 11, 12, 13, 14]).set_column(
        3, "genres", pa.array([["A"], ["B", 'C "q"'], [], ["D", "E", "F"], ["G"]])
    )
    sources = {}
    for name, table in whole.items():
        (tmp_path / name).mkdir()
        pq.write_table(table.slice(0, 3), tmp_path / name / "part-0.parquet")
        pq.write_table(table.slice(3), tmp_path / name / "part-1.parquet")
        sources[name] = pads.dataset(tmp_path / name, format="parquet")
    monkeypatch.setattr(warehouse, "SCAN_BATCH_ROWS", 2)
    streamed = wh.publish("2024-03-01", "r1", sources, "v1")
    assert streamed.rows == {"recommendations": 5, "item_neighbors": 5, "items": 5}
    assert streamed.checksum == checksum(whole["recommendations"])
    got = {r[0]: list(r[1]) for r in rows(wh, "SELECT item_id, genres FROM items")}
    assert got == {10: ["A"], 11: ["B", 'C "q"'], 12: [], 13: ["D", "E", "F"], 14: ["G"]}
    assert rows(wh, "SELECT sum(user_id), count(*) FROM recommendations") == [(15, 5)]


def test_republishing_the_same_ds_replaces_its_rows(wh):
    wh.publish("2024-03-01", "r1", tables([1, 2, 3], [10, 11, 12], score=0.5), "v1")
    wh.publish("2024-03-01", "r2", tables([4, 5], [20], score=0.9, version="v2", run="r2"), "v2")
    snap = snapshot(wh)
    assert [r[1] for r in snap["recommendations"]] == [4, 5]
    assert {r[4] for r in snap["recommendations"]} == {0.9}
    assert [r[1] for r in snap["item_neighbors"]] == [20]
    assert {r[1] for r in snap["publish_log"]} == {"r1", "r2"}


def test_repeated_publish_of_the_same_run_is_a_noop(wh):
    first = wh.publish("2024-03-01", "r1", tables([1, 2], [10]), "v1")
    before = snapshot(wh)
    again = wh.publish("2024-03-01", "r1", tables([1, 2], [10]), "v1")
    assert (first.status, again.status) == ("published", "noop")
    assert snapshot(wh) == before


def test_two_ds_coexist_and_latest_shows_the_newest_ds_only(wh):
    wh.publish("2024-03-02", "r2", tables([4, 5], [10], version="v2"), "v2")
    wh.publish(
        "2024-03-01", "r1", tables([1, 2, 3], [10]), "v1"
    )  # an older ds published later (backfill)
    got = rows(wh, "SELECT user_id FROM recommendations_latest ORDER BY user_id")
    assert got == [(4,), (5,)]
    assert rows(wh, "SELECT count(DISTINCT ds) FROM recommendations") == [(2,)]


def test_audit_of_staging_refuses_non_finite_scores_and_publishes_nothing(wh):
    wh.publish("2024-03-01", "r1", tables([1, 2], [10]), "v1")
    before = snapshot(wh)
    with pytest.raises(AuditError, match="non-finite score"):
        wh.publish("2024-03-01", "r2", tables([3], [10], score=float("nan")), "v1")
    assert snapshot(wh) == before


def test_audit_of_staging_refuses_broken_ranks_and_mixed_versions(wh):
    recs = recommendations([1, 1]).set_column(1, "rank", pa.array([1, 3], pa.int32()))
    with pytest.raises(AuditError, match="ranks are not 1..n"):
        wh.publish("2024-03-01", "r1", {"recommendations": recs}, "v1")
    mixed = pa.concat_tables([recommendations([1]), recommendations([2], version="v2")])
    with pytest.raises(AuditError, match="2 model versions"):
        wh.publish("2024-03-01", "r1", {"recommendations": mixed}, "v1")


def test_a_publish_failing_midway_leaves_earlier_rows_unchanged(wh):
    wh.publish("2024-03-01", "r1", tables([1, 2, 3], [10, 11]), "v1")
    before = snapshot(wh)
    bad = recommendations([7, 8]).set_column(3, "score", pa.array(["not a number", "x"]))
    broken = {
        "item_neighbors": neighbors([30, 31, 32], distance=9.0),
        "items": items([30, 31, 32], "new"),
        "recommendations": bad,
    }
    with pytest.raises(DB_ERRORS):
        wh.publish("2024-03-01", "r2", broken, "v2")
    assert snapshot(wh) == before
    with pytest.raises(DB_ERRORS):
        wh.publish("2024-03-05", "r3", broken, "v3")
    assert snapshot(wh) == before


def test_checksum_ignores_row_order_and_run_id_but_not_content():
    a = recommendations([1, 2, 3])
    assert checksum(a) == checksum(a.take([2, 0, 1]))
    assert checksum(a) == checksum(recommendations([1, 2, 3], run="other"))
    assert checksum(a) != checksum(recommendations([1, 2, 3], score=0.51))


def test_duckdb_path_parses_absolute_and_relative_urls():
    assert duckdb_path("duckdb:///abs/x.duckdb") == Path("/abs/x.duckdb")
    assert duckdb_path("duckdb://rel/x.duckdb") == Path("rel/x.duckdb")


@pytest.mark.parametrize(
    "url", ["sqlite:///abs/x.db", "postgresql://host/db", "duckdb://", "/abs/x.duckdb"]
)
def test_duckdb_path_rejects_other_urls(url):
    with pytest.raises(ConfigError, match="warehouse URL"):
        duckdb_path(url)


def test_open_warehouse_chooses_the_backend_by_url():
    with pytest.raises(ConfigError, match="unsupported scheme"):
        open_warehouse("sqlite:///x.db")
    assert isinstance(open_warehouse("duckdb:///tmp/x.duckdb"), DuckDBWarehouse)
    assert open_warehouse("postgresql://u@h:5432/db").dialect == "postgres"


def test_query_on_a_missing_duckdb_warehouse_raises_and_creates_nothing(tmp_path):
    wh = DuckDBWarehouse(f"duckdb://{tmp_path}/none/recs.duckdb")
    with pytest.raises(ConfigError, match="no warehouse at"):
        wh.query("SELECT 1")
    assert not (tmp_path / "none").exists()


def _publish_in_a_child(url: str, ds: str, hold_seconds: float) -> str:
    """Publish one ds from another process; with hold_seconds, keep the file open (locked) first."""
    wh = open_warehouse(url)
    if hold_seconds:
        con = wh.connect()
        time.sleep(hold_seconds)
        con.close()
    return wh.publish(ds, f"run-{ds}", {"recommendations": recommendations([1, 2])}, "v1").status


@pytest.mark.parametrize("engine", ["duckdb", "postgresql"])
def test_two_publishers_at_once_both_publish_whole(engine, tmp_path, request):
    """Two runs of different dates publishing into one warehouse at the same moment both publish whole:
    DuckDB lets one process write a file, so the second waits for the file lock (the first holds it
    open for 3 s before publishing); PostgreSQL publishers take an advisory lock and go one after the
    other."""
    url = (
        f"duckdb://{tmp_path / 'wh.duckdb'}"
        if engine == "duckdb"
        else request.getfixturevalue("pg_url")
    )
    open_warehouse(url).publish(
        "2026-01-01", "seed", {"recommendations": recommendations([1])}, "v1"
    )
    hold = 3.0 if engine == "duckdb" else 0.0
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(2) as pool:
        holder = pool.apply_async(_publish_in_a_child, (url, "2026-01-02", hold))
        time.sleep(1.0 if hold else 0.0)  # the holder has the file by now
        waiter = pool.apply_async(_publish_in_a_child, (url, "2026-01-03", 0.0))
        assert [holder.get(timeout=120), waiter.get(timeout=120)] == ["published", "published"]
    rows = open_warehouse(url).query(
        "SELECT CAST(ds AS TEXT) AS ds, count(*) AS n FROM recommendations GROUP BY 1 ORDER BY 1"
    )
    assert [tuple(r) for r in rows.itertuples(index=False)] == [
        ("2026-01-01", 1),
        ("2026-01-02", 2),
        ("2026-01-03", 2),
    ]
    logged = open_warehouse(url).query(
        "SELECT count(*) AS n FROM publish_log WHERE table_name = 'recommendations'"
    )
    assert int(logged["n"].iloc[0]) == 3


def test_postgres_tables_have_primary_keys_on_their_natural_keys_also_when_created_without(pg_url):
    from recsys_core.publish.tables import PUBLISH_LOG, PUBLISHED, RUN_REPORT

    with psycopg.connect(pg_url, autocommit=True) as con:  # as an older version created it: no key
        con.execute(
            "CREATE TABLE items (ds date NOT NULL, item_id bigint NOT NULL, title text NOT "
            "NULL, year integer, genres text[] NOT NULL)"
        )
    wh = open_warehouse(pg_url)
    wh.publish("2026-01-31", "r1", tables([1, 2], [1, 2]), "v1")
    wh.record_run("2026-01-31", "r1", [{"step": "publish", "status": "success", "seconds": 1.0}])
    keys = dict(
        rows(
            wh,
            "SELECT c.conrelid::regclass::text, array_to_string(array_agg(a.attname ORDER BY "
            "array_position(c.conkey, a.attnum)), ',') FROM pg_constraint c JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) WHERE c.contype = 'p' "
            "GROUP BY c.conrelid",
        )
    )
    for table in (*PUBLISHED.values(), PUBLISH_LOG, RUN_REPORT):
        assert keys[table.name] == ",".join(table.key), table.name
    with (
        psycopg.connect(pg_url, autocommit=True) as con,
        pytest.raises(psycopg.errors.UniqueViolation),
    ):
        con.execute("INSERT INTO recommendations SELECT * FROM recommendations LIMIT 1")
    wh.publish(
        "2026-01-31", "r2", tables([1, 2, 3], [1, 2]), "v1"
    )  # a rerun replaces under the key
    assert rows(wh, "SELECT count(*) FROM recommendations") == [(3,)]
