"""Invariants recommendations must hold before they may be published (the "audit" of write-audit-publish).

The audit runs in DuckDB, where the data is: the recommendations and interactions are scanned from
whatever they are given as (a pandas frame, an Arrow table, or an Arrow dataset over the lake's Parquet
files, which is what the publish job passes), so a night of 20,000,000 recommendations against
50,000,000 interactions is audited in bounded memory (`memory_limit`, spilling to `spill_dir`) rather
than as whole pandas frames."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from recsys_core import columns as C
from recsys_core.errors import AuditError

# rows each user must get: top_n, or every unseen catalogue item when fewer remain
_COUNTS_SQL = """
WITH catalogue AS (SELECT DISTINCT item_id FROM items),
seen AS (
    SELECT user_id, count(DISTINCT item_id) AS n FROM interactions
    WHERE item_id IN (SELECT item_id FROM catalogue) GROUP BY user_id
),
SELECT u.user_id, coalesce(per_user.n, 0) AS got,
       least(?, (SELECT count(*) FROM catalogue) - coalesce(seen.n, 0)) AS expected
FROM users AS u LEFT JOIN seen USING (user_id) LEFT JOIN per_user USING (user_id)
"""


def _connection(
    recs, user_ids: np.ndarray, interactions, item_ids: np.ndarray, memory_limit, spill_dir
):
    con = duckdb.connect()
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if spill_dir:
        Path(spill_dir).mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{spill_dir}'")
    con.execute("SET preserve_insertion_order = false")
    con.register("recs", recs)
    con.register("interactions", interactions)
    con.register("users", pa.table({C.USER_ID: np.asarray(user_ids, dtype=np.int64)}))
    con.register("items", pa.table({C.ITEM_ID: np.asarray(item_ids, dtype=np.int64)}))
    # one pass over the recommendations for every per-user figure (the row counts and the rank and
    # item checks); a temp table, so it spills under the memory limit too
    con.execute(
        """CREATE TEMP TABLE per_user AS
           SELECT user_id, count(*) AS n, count(DISTINCT rank) AS ranks,
                  count(DISTINCT item_id) AS items, max(rank) AS top, min(rank) AS low
           FROM recs GROUP BY user_id"""
    )
    return con


def expected_counts(
    user_ids: np.ndarray, interactions, item_ids: np.ndarray, top_n: int
) -> pd.Series:
    """Rows each user must get: top_n, or every unseen catalogue item when fewer remain."""
    empty = pd.DataFrame({c: pd.Series([], dtype=np.int64) for c in (C.USER_ID, C.RANK, C.ITEM_ID)})
    con = _connection(empty, user_ids, interactions, item_ids, None, None)
    try:
        rows = con.execute(_COUNTS_SQL, [top_n]).fetchall()
    finally:
        con.close()
    return pd.Series({user: expected for user, _, expected in rows}, dtype=np.int64).reindex(
        user_ids
    )


def audit_recommendations(
    recs,
    user_ids: np.ndarray,
    interactions,
    item_ids: np.ndarray,
    top_n: int,
    memory_limit: str | None = None,
    spill_dir: Path | None = None,
) -> str | None:
    """Raise AuditError listing every broken invariant; return the one model version of the rows (None
    when there are none) when all hold. `recs` and `interactions` are anything DuckDB scans: pandas,
    an Arrow table or an Arrow dataset."""
    con = _connection(recs, user_ids, interactions, item_ids, memory_limit, spill_dir)
    try:
        return _audit(con, top_n)
    finally:
        con.close()


def _audit(con, top_n: int) -> str | None:
    problems = []
    per_user = con.execute(
        """SELECT count(*) FILTER (WHERE ranks <> n), count(*) FILTER (WHERE items <> n),
                  count(*) FILTER (WHERE top <> n OR low < 1)
           FROM per_user"""
    ).fetchone()
    rows = con.execute(
        """SELECT count(*) FILTER (WHERE NOT coalesce(isfinite(CAST(score AS DOUBLE)), false)),
                  count(*) FILTER (WHERE NOT coalesce(isfinite(CAST(predicted_rating AS DOUBLE)), false)),
                  count(*) FILTER (WHERE coalesce(reason, '') = ''),
                  count(DISTINCT model_version), min(model_version)
           FROM recs"""
    ).fetchone()
    unknown = con.execute(
        "SELECT count(*) FROM recs AS r WHERE NOT EXISTS "
        "(SELECT 1 FROM items AS i WHERE i.item_id = r.item_id)"
    ).fetchone()[0]
    watched = con.execute(
        "SELECT count(*) FROM recs AS r WHERE EXISTS (SELECT 1 FROM interactions AS i "
        "WHERE i.user_id = r.user_id AND i.item_id = r.item_id)"
    ).fetchone()[0]
    short = con.execute(
        f"SELECT count(*), arg_min(user_id, user_id), arg_min(got, user_id), "
        f"arg_min(expected, user_id) FROM ({_COUNTS_SQL}) WHERE got <> expected",
        [top_n],
    ).fetchone()
    if per_user[0]:
        problems.append("duplicate (user_id, rank) rows")
    if per_user[1]:
        problems.append("an item recommended twice to the same user")
    if rows[0]:
        problems.append("non-finite scores")
    if rows[1]:
        problems.append("non-finite predicted ratings")
    if unknown:
        problems.append(f"{unknown} recommended item(s) not in the catalogue")
    if watched:
        problems.append(f"{watched} recommendation(s) of items the user already interacted with")
    if rows[2]:
        problems.append("recommendations without a reason")
    if short[0]:
        problems.append(
            f"{short[0]} user(s) with the wrong number of rows, e.g. user {short[1]} has "
            f"{short[2]} instead of {short[3]}"
        )
    if per_user[2]:
        problems.append("ranks are not contiguous 1..n per user")
    if rows[3] > 1:
        problems.append("more than one model version in one publish")
    if problems:
        raise AuditError(
            "recommendations failed the audit, nothing was published: " + "; ".join(problems)
        )
    return rows[4]
