"""Ranking: score each user's candidates by v_u . v_m and keep the top N (SEED.md "Ranking"), in Spark.

v_u is computed once per user beforehand (the user_embeddings table); user and item embeddings are
broadcast. Retrieval wrote one row per user, so each Arrow batch of users is scored and cut to its top N
in numpy (mapInArrow), with no join and no shuffle. Nothing is collected to the driver.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recsys_core import columns as C
from recsys_core.errors import RecsysError
from recsys_core.io.sorted_keys import positions

RANKED_SCHEMA = (
    f"{C.USER_ID} long, {C.RANK} int, {C.ITEM_ID} long, {C.SCORE} double, {C.REASON} string"
)
SCORE_CHUNK = 65_536  # candidates scored per einsum: bounds the gathered vectors to a few MB
MISSING_IDS_SHOWN = 5  # of each kind, in the error: enough to look them up, short enough to read


def _sorted(ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(ids, kind="stable")
    return np.asarray(ids, dtype=np.int64)[order], np.ascontiguousarray(vectors, dtype=np.float32)[
        order
    ]


def top_by_score(
    users: np.ndarray,
    offsets: np.ndarray,
    items: np.ndarray,
    item_ids: np.ndarray,
    item_vectors: np.ndarray,
    top_n: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top_n candidates of each row by v_u . v_m, highest first, ties by lower item id.

    users: (B, d) v_u per row; row b's candidates are items[offsets[b]:offsets[b + 1]] (catalogue
    positions into item_vectors, ids item_ids). Returns (row, candidate index, score) in rank order.
    """
    lengths = np.diff(offsets)
    rows = len(lengths)
    if rows == 0 or top_n <= 0 or len(items) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    row = np.repeat(np.arange(rows), lengths)
    scores = np.empty(len(items), dtype=np.float32)
    for lo in range(0, len(items), SCORE_CHUNK):
        hi = lo + SCORE_CHUNK
        scores[lo:hi] = np.einsum("ij,ij->i", users[row[lo:hi]], item_vectors[items[lo:hi]])
    width = int(lengths.max())
    col = np.arange(len(items)) - offsets[row]
    dense = np.full((rows, width), np.inf, dtype=np.float32)  # negated scores; padding sorts last
    ids = np.full((rows, width), np.iinfo(np.int64).max, dtype=np.int64)
    dense[row, col], ids[row, col] = -scores, item_ids[items]
    by_id = np.argsort(ids, axis=1, kind="stable")
    by_score = np.argsort(np.take_along_axis(dense, by_id, axis=1), axis=1, kind="stable")[
        :, :top_n
    ]
    pick = np.take_along_axis(by_id, by_score, axis=1)
    keep = pick < lengths[:, None]
    out_row = np.nonzero(keep)[0]
    index = offsets[out_row] + pick[keep]
    return out_row, index, scores[index]


def _check_known(candidates: DataFrame, shared) -> None:
    """Fails on candidates whose user or item has no embedding, naming a few of each."""
    import pyarrow as pa

    def missing(batches):
        user_ids, _, item_ids, _ = shared.value
        for batch in batches:
            users = batch.column(C.USER_ID).to_numpy()
            items = batch.column(C.ITEM_ID).flatten().to_numpy()
            u = np.unique(users[positions(user_ids, users) < 0])[:MISSING_IDS_SHOWN]
            i = np.unique(items[positions(item_ids, items) < 0])[:MISSING_IDS_SHOWN]
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(["user"] * len(u) + ["item"] * len(i)),
                    pa.array(np.r_[u, i].astype(np.int64)),
                ],
                names=["kind", "id"],
            )

    found = (
        candidates.select(C.USER_ID, C.ITEM_ID)
        .mapInArrow(missing, "kind string, id long")
        .collect()
    )
    users = sorted({r["id"] for r in found if r["kind"] == "user"})[:MISSING_IDS_SHOWN]
    items = sorted({r["id"] for r in found if r["kind"] == "item"})[:MISSING_IDS_SHOWN]
    if users or items:
        raise RecsysError(f"candidates without embeddings: users {users}, items {items}")


def rank_candidates(
    candidates: DataFrame,
    user_ids: np.ndarray,
    user_embeddings: np.ndarray,
    item_ids: np.ndarray,
    item_embeddings: np.ndarray,
    top_n: int,
) -> DataFrame:
    """Top `top_n` candidates per user by score, highest first (ties: lower item_id first).

    `candidates` has retrieval's per-user rows (user_id, item_id array, reasons array of arrays);
    v_u of user_ids[k] is user_embeddings[k]. Returns user_id, rank (1..), item_id, score, reason
    (the candidate's reasons joined by "; ").
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    spark = candidates.sparkSession
    shared = spark.sparkContext.broadcast(
        (*_sorted(user_ids, user_embeddings), *_sorted(item_ids, item_embeddings))
    )
    _check_known(candidates, shared)

    def score(batches):
        all_users, user_vectors, all_items, item_vectors = shared.value
        for batch in batches:
            uid = batch.column(C.USER_ID).to_numpy()
            item_lists = batch.column(C.ITEM_ID)
            flat_ids = item_lists.flatten().to_numpy()
            offsets = item_lists.offsets.to_numpy().astype(np.int64)
            offsets = offsets - offsets[0]
            row, index, scores = top_by_score(
                user_vectors[positions(all_users, uid)],
                offsets,
                positions(all_items, flat_ids),
                all_items,
                item_vectors,
                top_n,
            )
            ranks = np.arange(len(row)) - np.searchsorted(row, row) + 1
            reasons = batch.column(C.REASONS).flatten().take(pa.array(index))
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(uid[row]),
                    pa.array(ranks.astype(np.int32)),
                    pa.array(flat_ids[index]),
                    pa.array(scores.astype(np.float64)),
                    pc.binary_join(reasons, "; "),
                ],
                names=[C.USER_ID, C.RANK, C.ITEM_ID, C.SCORE, C.REASON],
            )

    return candidates.select(C.USER_ID, C.ITEM_ID, C.REASONS).mapInArrow(score, RANKED_SCHEMA)


def prediction(score: Column, transform: tuple[float, float, bool]) -> Column:
    """The model's prediction from its score as a Spark expression (TwoTowerModel.output_transform)."""
    slope, intercept, sigmoid = transform
    linear = F.lit(float(slope)) * score + F.lit(float(intercept))
    return (F.lit(1.0) / (F.lit(1.0) + F.exp(-linear))) if sigmoid else linear
