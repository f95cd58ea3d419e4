"""Bulk-load speed of the PostgreSQL warehouse: COPY (what publish uses) against row-by-row INSERTs.

Run: .venv/bin/python benchmarks/bench_publish.py [--rows 1000000] [--url postgresql://...]
Prints rows per second of each path, measured in the same run, and their ratio.
"""

from __future__ import annotations

import argparse
import time
import uuid

import numpy as np
import pyarrow as pa

from recsys_core.publish.tables import RECOMMENDATIONS, create_sql
from recsys_core.publish.warehouse import open_warehouse


def recommendations(n: int) -> pa.Table:
    rng = np.random.default_rng(0)
    users = np.arange(n, dtype=np.int64) // 20
    return pa.table({
        "ds": pa.array(np.full(n, 20_000, dtype=np.int32)).cast(pa.date32()),
        "user_id": users, "rank": (np.arange(n) % 20 + 1).astype(np.int32),
        "item_id": rng.integers(0, 100_000, n), "score": rng.random(n), "predicted_rating": rng.random(n) * 5,
        "reason": pa.array(["similar_to:318; top_genre:Drama"] * n),
        "model_version": pa.array(["m1"] * n), "run_id": pa.array(["bench"] * n),
    })


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--reference-rows", type=int, default=20_000, help="rows for the row-by-row reference")
    p.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    a = p.parse_args()
    wh = open_warehouse(a.url)
    con = wh.connect()
    table = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        con.execute(create_sql(RECOMMENDATIONS, "postgres", table))
        rows = recommendations(a.rows)
        t = time.perf_counter()
        wh.bulk_load(con, table, rows)
        copy_s = time.perf_counter() - t
        con.execute(f"TRUNCATE {table}")
        ref = rows.slice(0, a.reference_rows).to_pylist()
        cols = RECOMMENDATIONS.names
        t = time.perf_counter()
        with con.cursor() as cur:
            cur.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
                            [tuple(r[c] for c in cols) for r in ref])
        insert_s = time.perf_counter() - t
    finally:
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.close()
    copy_rate, insert_rate = a.rows / copy_s, a.reference_rows / insert_s
    print(f"COPY bulk load   : {a.rows:>10,} rows in {copy_s:7.2f} s = {copy_rate:>12,.0f} rows/s")
    print(f"row-by-row INSERT: {a.reference_rows:>10,} rows in {insert_s:7.2f} s = {insert_rate:>12,.0f} rows/s")
    print(f"COPY is {copy_rate / insert_rate:.1f}x faster per row")


if __name__ == "__main__":
    main()
