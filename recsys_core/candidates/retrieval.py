"""Per-user candidate retrieval in Spark (SEED.md "Retrieval"), each candidate keeping why it came.

What all users share is small and computed first: item popularity, each genre's and country's top
list (Spark aggregates of at most catalogue size), and the neighbor lists. It is broadcast once.
Then one shuffle brings each user's row of the users table and interactions together, sorted most
recent first, and every partition runs the numpy kernel (candidate_kernel) over many users at a time.
The output has one row per user: user_id, item_id (candidate ids, ascending) and reasons (each
candidate's reasons, sorted), so ranking needs no further shuffle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_core import columns as C
from recsys_core.candidates.retrieval_kernel import Sources, build_sources, candidates
from recsys_core.config import RetrievalConfig
from recsys_core.io.sorted_keys import positions

if TYPE_CHECKING:
    import pandas as pd

CANDIDATES_SCHEMA = f"{C.USER_ID} long, {C.ITEM_ID} array<long>, {C.REASONS} array<array<string>>"
# users' rows are gathered to at least this many before the kernel runs (fewer numpy calls)
KERNEL_ROWS = 262_144


def _top(df: DataFrame, by: list[str], size: int) -> DataFrame:
    """Keep the `size` most popular items per group: more interactions, then higher mean, then lower id."""
    w = Window.partitionBy(*by).orderBy(F.desc("n"), F.desc("mean"), F.asc(C.ITEM_ID))
    return df.withColumn("pos", F.row_number().over(w)).where(F.col("pos") <= size)


def _stats(df: DataFrame, by: list[str]) -> DataFrame:
    return df.groupBy(*by).agg(F.count(F.lit(1)).alias("n"), F.avg(C.RATING).alias("mean"))


def sources(
    users: DataFrame,
    items: DataFrame,
    interactions: DataFrame,
    neighbors: DataFrame,
    cfg: RetrievalConfig,
) -> Sources:
    """What every user's retrieval shares, from aggregates no larger than the catalogue."""
    catalogue = items.select(C.ITEM_ID, C.GENRES).toArrow().sort_by(C.ITEM_ID)
    item_ids = catalogue.column(C.ITEM_ID).to_numpy()
    # interactions with items outside the catalogue can neither be recommended nor explain anything
    rated = interactions.join(F.broadcast(items.select(C.ITEM_ID)), C.ITEM_ID, "left_semi")
    stats = _stats(rated, [C.ITEM_ID]).toArrow()
    n, mean = np.zeros(len(item_ids), dtype=np.int64), np.full(len(item_ids), np.nan)
    at = positions(item_ids, stats.column(C.ITEM_ID).to_numpy())
    n[at], mean[at] = (
        stats.column("n").to_numpy(),
        stats.column("mean").to_numpy(zero_copy_only=False),
    )
    near = (
        neighbors.where(F.col(C.RANK) <= cfg.similar_per_item)
        .select(C.ITEM_ID, C.RANK, C.NEIGHBOR_ID)
        .toArrow()
    )
    known = users.where(F.col(C.COUNTRY) != C.UNKNOWN_COUNTRY).select(C.USER_ID, C.COUNTRY)
    per_country = _stats(rated.join(F.broadcast(known), C.USER_ID), [C.COUNTRY, C.ITEM_ID])
    tops = (
        _top(per_country, [C.COUNTRY], cfg.country_items)
        .select(C.COUNTRY, "pos", C.ITEM_ID)
        .toArrow()
    )
    tops = tops.sort_by([(C.COUNTRY, "ascending"), ("pos", "ascending")])
    country, top_ids = (
        tops.column(C.COUNTRY).to_numpy(zero_copy_only=False),
        tops.column(C.ITEM_ID).to_numpy(),
    )
    lists = {c: top_ids[country == c] for c in np.unique(country)} if len(country) else {}
    return build_sources(
        item_ids,
        [g or [] for g in catalogue.column(C.GENRES).to_pylist()],
        n,
        mean,
        tuple(near.column(c).to_numpy() for c in (C.ITEM_ID, C.RANK, C.NEIGHBOR_ID)),
        lists,
        cfg,
    )


def _batch(src: Sources, vocabulary, cfg: RetrievalConfig, top_n: int, table):
    """The kernel over one table of whole users (user_id ascending; per user its users-table row with a
    null item_id, and its interactions most recent first) as one Arrow record batch (vocabulary: the
    reason strings as an Arrow array)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    head = table.column(C.ITEM_ID).is_null().to_numpy(zero_copy_only=False)
    uid = table.column(C.USER_ID).to_numpy()
    user_ids = uid[head]
    names = pc.fill_null(table.column(C.COUNTRY).filter(pa.array(head)), "").to_numpy(
        zero_copy_only=False
    )
    at = positions(src.countries, names)
    country = np.where(at >= 0, at, src.global_row)
    ev = ~head
    ev_item = positions(src.item_ids, pc.fill_null(table.column(C.ITEM_ID), -1).to_numpy()[ev])
    ev_user = positions(user_ids, uid[ev])
    # interactions of ids missing from the users or items table are nobody's and explain nothing
    ok = (ev_item >= 0) & (ev_user >= 0)
    got = candidates(src, cfg, top_n, country, ev_user[ok], ev_item[ok])
    per_user = np.bincount(got.user, minlength=len(user_ids))
    offsets = pa.array(np.r_[0, np.cumsum(per_user[per_user > 0])].astype(np.int32))
    reasons = pa.ListArray.from_arrays(
        pa.array(got.reason_offsets.astype(np.int32)), vocabulary.take(pa.array(got.reasons))
    )
    return pa.RecordBatch.from_arrays(
        [
            pa.array(user_ids[per_user > 0]),
            pa.ListArray.from_arrays(offsets, pa.array(src.item_ids[got.item])),
            pa.ListArray.from_arrays(offsets, reasons),
        ],
        names=[C.USER_ID, C.ITEM_ID, C.REASONS],
    )


def whole_users(batches, min_rows: int):
    """Re-cuts a stream of record batches sorted by user_id into tables of at least min_rows rows (except
    the last) that never split a user."""
    import pyarrow as pa

    pending, rows = [], 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        if rows < min_rows:
            continue
        table = pa.Table.from_batches(pending)
        uid = table.column(C.USER_ID).to_numpy()
        cut = int(np.searchsorted(uid, uid[-1]))  # the last user may continue in the next batch
        if cut == 0:
            continue
        yield table.slice(0, cut)
        pending, rows = table.slice(cut).to_batches(), table.num_rows - cut
    if rows:
        yield pa.Table.from_batches(pending)


def retrieve(
    users: DataFrame,
    items: DataFrame,
    interactions: DataFrame,
    neighbors: DataFrame,
    cfg: RetrievalConfig,
    top_n: int,
    partitions: int | None = None,
    kernel_rows: int = KERNEL_ROWS,
) -> DataFrame:
    """Candidates, one row per user of `users` who has any: all sources merged, deduplicated, watched
    items removed, topped up so every user has at least min(top_n, unseen items) candidates."""
    spark = users.sparkSession
    shared = spark.sparkContext.broadcast(sources(users, items, interactions, neighbors, cfg))
    none = F.lit(None)
    heads = users.select(
        C.USER_ID,
        C.COUNTRY,
        none.cast("long").alias(C.ITEM_ID),
        none.cast("long").alias(C.TIMESTAMP),
    )
    events = interactions.select(
        C.USER_ID, none.cast("string").alias(C.COUNTRY), C.ITEM_ID, C.TIMESTAMP
    )
    # most recent first, ties by higher item id; the users-table row (null timestamp) sorts last
    rows = (
        heads.unionByName(events)
        # conf.get without a default returns the value or raises; pyspark annotates it str | None anyway
        .repartition(
            partitions or int(spark.conf.get("spark.sql.shuffle.partitions")),  # type: ignore[arg-type]
            C.USER_ID,
        )
        .sortWithinPartitions(C.USER_ID, F.desc(C.TIMESTAMP), F.desc(C.ITEM_ID))
    )

    def kernel(batches):
        import pyarrow as pa

        src = shared.value
        vocabulary = pa.array(src.vocabulary, type=pa.string())
        for table in whole_users(batches, kernel_rows):
            yield _batch(src, vocabulary, cfg, top_n, table)

    return rows.mapInArrow(kernel, CANDIDATES_SCHEMA)


def long_form(candidates) -> pd.DataFrame:
    """(user_id, item_id, reasons) rows of a pandas frame of retrieve's per-user rows."""
    import pandas as pd

    exploded = candidates.explode([C.ITEM_ID, C.REASONS], ignore_index=True).dropna(
        subset=[C.ITEM_ID]
    )
    return pd.DataFrame(
        {
            C.USER_ID: exploded[C.USER_ID].astype("int64"),
            C.ITEM_ID: exploded[C.ITEM_ID].astype("int64"),
            C.REASONS: exploded[C.REASONS].map(list),
        }
    )
