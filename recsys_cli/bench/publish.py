"""Bulk-load speed of the PostgreSQL warehouse: COPY (what publish uses) against row-by-row INSERTs.

Run: .venv/bin/python recsys bench publish [--rows 1000000] [--url postgresql://...]
Prints rows per second of each path, measured in the same run, and their ratio.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pyarrow as pa

from recsys_core.publish.tables import RECOMMENDATIONS, create_sql
from recsys_core.publish.warehouse import open_warehouse

# the synthetic recommendations: ranking.top_n's default per user, one fixed ds, ids of a large
# catalogue and ratings on the 5-star scale; their values do not change the load's speed
RECS_PER_USER = 20
DS_DAYS = 20_000  # days since 1970-01-01
CATALOGUE_ITEMS = 100_000
MAX_RATING = 5
SEED = 0
TABLE_SUFFIX_CHARS = 8  # hex characters of a uuid4 naming the scratch table: concurrent runs differ


def recommendations(n: int) -> pa.Table:
    rng = np.random.default_rng(SEED)
    users = np.arange(n, dtype=np.int64) // RECS_PER_USER
    return pa.table(
        {
            "ds": pa.array(np.full(n, DS_DAYS, dtype=np.int32)).cast(pa.date32()),
            "user_id": users,
            "rank": (np.arange(n) % RECS_PER_USER + 1).astype(np.int32),
            "item_id": rng.integers(0, CATALOGUE_ITEMS, n),
            "score": rng.random(n),
            "predicted_rating": rng.random(n) * MAX_RATING,
            "reason": pa.array(["similar_to:318; top_genre:Drama"] * n),
            "model_version": pa.array(["m1"] * n),
            "run_id": pa.array(["bench"] * n),
        }
    )


def bench_publish(rows: int, reference_rows: int, url: str) -> dict:
    """Seconds to COPY `rows` recommendations and to INSERT `reference_rows` of them one by one."""
    wh = open_warehouse(url)
    con = wh.connect()
    table = f"bench_{uuid.uuid4().hex[:TABLE_SUFFIX_CHARS]}"
    try:
        con.execute(create_sql(RECOMMENDATIONS, "postgres", table))
        data = recommendations(rows)
        t = time.perf_counter()
        wh.bulk_load(con, table, data)
        copy_s = time.perf_counter() - t
        con.execute(f"TRUNCATE {table}")
        ref = data.slice(0, reference_rows).to_pylist()
        cols = RECOMMENDATIONS.names
        t = time.perf_counter()
        with con.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
                [tuple(r[c] for c in cols) for r in ref],
            )
        insert_s = time.perf_counter() - t
    finally:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.close()
    return {
        "rows": rows,
        "copy_seconds": copy_s,
        "reference_rows": reference_rows,
        "insert_seconds": insert_s,
    }


def print_publish(report: dict) -> None:
    copy_rate = report["rows"] / report["copy_seconds"]
    insert_rate = report["reference_rows"] / report["insert_seconds"]
    print(
        f"COPY bulk load   : {report['rows']:>10,} rows in {report['copy_seconds']:7.2f} s = {copy_rate:>12,.0f} rows/s"
    )
    print(
        f"row-by-row INSERT: {report['reference_rows']:>10,} rows in {report['insert_seconds']:7.2f} s = "
        f"{insert_rate:>12,.0f} rows/s"
    )
    print(f"COPY is {copy_rate / insert_rate:.1f}x faster per row")
