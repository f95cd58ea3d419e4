"""Ranking: score each user's candidates by v_u . v_m and keep the top N (SEED.md "Ranking"), in Spark.

v_u is computed once per user beforehand (the user_embeddings table); user and item embeddings are
broadcast. Retrieval wrote one row per user, so each Arrow batch of users is scored and cut to its top N
in numpy (mapInArrow), with no join and no shuffle. Nothing is collected to the driver.

The "new arrivals" source joins here, because it is chosen by the towers: the catalogue items nobody
has interacted with yet (the newest MAX_NEW_ARRIVALS by release year) are scored against each user's
v_u, and the user's best `new_items` of them join the candidates with reason "new". Popularity,
genre and neighbor sources cannot find such items; only their content features place them. An item
nobody has rated scores below established ones (its id embedding is empty and its rating count 0),
so `ranking.new_slots` places of each list are kept for the user's best arrivals, at the end of the
list where their scores put them: the shelf of new items that would otherwise never be shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from recsys_core import columns as C
from recsys_core.errors import RecsysError
from recsys_core.io.sorted_keys import positions

if TYPE_CHECKING:
    import pandas as pd

RANKED_SCHEMA = (
    f"{C.USER_ID} long, {C.RANK} int, {C.ITEM_ID} long, {C.SCORE} double, {C.REASON} string"
)
SCORE_CHUNK = 65_536  # candidates scored per einsum: bounds the gathered vectors to a few MB
MISSING_IDS_SHOWN = 5  # of each kind, in the error: enough to look them up, short enough to read
NEW = C.REASON_NEW  # the reason of a candidate from the new arrivals
# new arrivals scored per user: bounds the users x arrivals score block (with NEW_SCORE_USERS)
MAX_NEW_ARRIVALS = 5_000
NEW_SCORE_USERS = 1_024  # users whose new-arrival scores are held at once


def new_arrivals(item_features: pd.DataFrame, limit: int = MAX_NEW_ARRIVALS) -> np.ndarray:
    """Ids of the items without any interaction (rating_count 0), newest release year first (then
    higher id), at most `limit`."""
    fresh = item_features[item_features[C.RATING_COUNT] <= 0]
    fresh = fresh.sort_values([C.YEAR, C.ITEM_ID], ascending=False, kind="stable")
    return fresh[C.ITEM_ID].to_numpy(np.int64)[:limit]


def best_new(
    users: np.ndarray, arrivals: np.ndarray, arrival_vectors: np.ndarray, per_user: int
) -> tuple[np.ndarray, np.ndarray]:
    """(row, arrival id) of each row's `per_user` best arrivals by v_u . v_m (any order within a row)."""
    k = min(per_user, len(arrivals))
    if k <= 0 or len(users) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rows, picks = [], []
    for lo in range(0, len(users), NEW_SCORE_USERS):
        scores = users[lo : lo + NEW_SCORE_USERS] @ arrival_vectors.T
        top = (
            np.argpartition(-scores, k - 1, axis=1)[:, :k]
            if k < len(arrivals)
            else (np.broadcast_to(np.arange(len(arrivals)), scores.shape))
        )
        rows.append(np.repeat(np.arange(lo, lo + len(scores)), k))
        picks.append(arrivals[top.ravel()])
    return np.concatenate(rows), np.concatenate(picks)


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


def top_with_reserved(
    users: np.ndarray,
    offsets: np.ndarray,
    items: np.ndarray,
    item_ids: np.ndarray,
    item_vectors: np.ndarray,
    top_n: int,
    pool: np.ndarray,
    slots: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """top_by_score, except that each row's best `slots` candidates of `pool` (one flag per candidate)
    are in its top_n whatever their score, in place of the row's lowest-scored others; the list stays
    in score order. Returns (row, candidate index, score) in rank order."""
    if slots <= 0 or not pool.any():
        return top_by_score(users, offsets, items, item_ids, item_vectors, top_n)
    rows = len(offsets) - 1
    row_of = np.repeat(np.arange(rows), np.diff(offsets))

    def top_of(chosen: np.ndarray, n: int):
        sub_offsets = np.r_[0, np.cumsum(np.bincount(row_of[chosen], minlength=rows))]
        row, local, score = top_by_score(
            users, sub_offsets, items[chosen], item_ids, item_vectors, n
        )
        return row, chosen[local], score

    r_row, r_index, r_score = top_of(np.flatnonzero(pool), slots)
    rest = np.ones(len(items), dtype=bool)
    rest[r_index] = False
    o_row, o_index, o_score = top_of(np.flatnonzero(rest), top_n)
    reserved = np.bincount(r_row, minlength=rows)
    o_rank = np.arange(len(o_row)) - np.searchsorted(o_row, o_row)
    keep = o_rank < top_n - reserved[o_row]
    row = np.concatenate([o_row[keep], r_row])
    index = np.concatenate([o_index[keep], r_index])
    score = np.concatenate([o_score[keep], r_score])
    order = np.lexsort((item_ids[items[index]], -score, row))
    return row[order], index[order], score[order]


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
    arrivals: np.ndarray | None = None,
    new_items: int = 0,
    new_slots: int = 0,
) -> DataFrame:
    """Top `top_n` candidates per user by score, highest first (ties: lower item_id first).

    `candidates` has retrieval's per-user rows (user_id, item_id array, reasons array of arrays);
    v_u of user_ids[k] is user_embeddings[k]. Each user's `new_items` best of `arrivals` (item ids,
    see new_arrivals) join their candidates first, with reason "new", and the best `new_slots` of
    the arrivals among a user's candidates keep a place in the top_n (top_with_reserved). Returns
    user_id, rank (1..), item_id, score, reason (the candidate's reasons joined by "; ").
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    spark = candidates.sparkSession
    shared = spark.sparkContext.broadcast(
        (*_sorted(user_ids, user_embeddings), *_sorted(item_ids, item_embeddings))
    )
    _check_known(candidates, shared)
    arrivals = np.zeros(0, np.int64) if arrivals is None or new_items <= 0 else arrivals
    if len(arrivals):
        at = positions(np.sort(np.asarray(item_ids, dtype=np.int64)), arrivals)
        if (at < 0).any():
            raise RecsysError(
                f"new arrivals without embeddings: {arrivals[at < 0][:MISSING_IDS_SHOWN]}"
            )

    def score(batches):
        all_users, user_vectors, all_items, item_vectors = shared.value
        arrival_vectors = item_vectors[positions(all_items, arrivals)]
        for batch in batches:
            uid = batch.column(C.USER_ID).to_numpy()
            item_lists = batch.column(C.ITEM_ID)
            flat_ids = item_lists.flatten().to_numpy()
            offsets = item_lists.offsets.to_numpy().astype(np.int64)
            offsets = offsets - offsets[0]
            reasons = batch.column(C.REASONS).flatten()
            vu = user_vectors[positions(all_users, uid)]
            if len(arrivals):
                flat_ids, offsets, reasons = _with_new(
                    flat_ids,
                    offsets,
                    reasons,
                    *best_new(vu, arrivals, arrival_vectors, new_items),
                    arrivals,
                )
            row, index, scores = top_with_reserved(
                vu,
                offsets,
                positions(all_items, flat_ids),
                all_items,
                item_vectors,
                top_n,
                np.isin(flat_ids, arrivals),
                new_slots,
            )
            ranks = np.arange(len(row)) - np.searchsorted(row, row) + 1
            reasons = reasons.take(pa.array(index))
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


def _tagged(reasons, mask: np.ndarray):
    """The per-candidate reason lists with NEW appended to the lists of the candidates in `mask`."""
    import pyarrow as pa

    if not mask.any():
        return reasons
    offsets = reasons.offsets.to_numpy().astype(np.int64)
    offsets = offsets - offsets[0]
    values = reasons.flatten()
    lengths = np.diff(offsets)
    new_offsets = np.r_[0, np.cumsum(lengths + mask)]
    # where each old value and each added NEW lands in the new flat values
    src = np.empty(new_offsets[-1], dtype=np.int64)
    src[np.repeat(new_offsets[:-1] - offsets[:-1], lengths) + np.arange(len(values))] = np.arange(
        len(values)
    )
    added = np.flatnonzero(mask)
    src[new_offsets[added] + lengths[added]] = len(values) + np.arange(len(added))
    merged = pa.concat_arrays([values, pa.array([NEW] * len(added), type=values.type)])
    return pa.ListArray.from_arrays(
        pa.array(new_offsets.astype(np.int32)), merged.take(pa.array(src))
    )


def _with_new(flat_ids, offsets, reasons, new_row, new_id, arrivals):
    """The candidate lists (flat ids, offsets, per-candidate reason lists) with each row's new arrivals
    appended, the ones already among its candidates left out; every arrival among the candidates,
    whatever found it, has NEW among its reasons."""
    import pyarrow as pa

    reasons = _tagged(reasons, np.isin(flat_ids, arrivals))
    rows = len(offsets) - 1
    own_row = np.repeat(np.arange(rows), np.diff(offsets))
    width = max(int(flat_ids.max(initial=0)), int(new_id.max(initial=0))) + 1
    fresh = ~np.isin(new_row * width + new_id, own_row * width + flat_ids)
    new_row, new_id = new_row[fresh], new_id[fresh]
    row = np.concatenate([own_row, new_row])
    order = np.argsort(row, kind="stable")  # each row's own candidates, then its arrivals
    merged_reasons = pa.concat_arrays(
        [reasons, pa.array([[NEW]] * len(new_id), type=reasons.type)]
    ).take(pa.array(order))
    counts = np.bincount(row, minlength=rows)
    return (
        np.concatenate([flat_ids, new_id])[order],
        np.r_[0, np.cumsum(counts)].astype(np.int64),
        merged_reasons,
    )


def prediction(score: Column, transform: tuple[float, float, bool]) -> Column:
    """The model's prediction from its score as a Spark expression (TwoTowerModel.output_transform)."""
    slope, intercept, sigmoid = transform
    linear = F.lit(float(slope)) * score + F.lit(float(intercept))
    return (F.lit(1.0) / (F.lit(1.0) + F.exp(-linear))) if sigmoid else linear
