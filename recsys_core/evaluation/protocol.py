"""The offline evaluation protocol: a per-user temporal split and top-K ranking metrics.

Fixed so that results compare across runs and systems (issue "Model fidelity, offline evaluation"):
per user, interactions sorted by (timestamp, item_id); the last 20% (rounded half up, at least one)
are the test set; relevant = test interactions rated >= 4; evaluated users have at least one training
interaction and one relevant test interaction; training items are never recommended.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_core import columns as C

TEST_SHARE = 0.2
RELEVANT_RATING = 4.0
K = 10
# users scored at once: bounds the score matrix to this many rows of catalogue width
SCORE_BLOCK_USERS = 1024


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    test: pd.DataFrame

    @property
    def relevant(self) -> pd.DataFrame:
        """Test interactions rated RELEVANT_RATING or more, of users who also have training interactions."""
        rel = self.test[self.test[C.RATING] >= RELEVANT_RATING]
        return rel[rel[C.USER_ID].isin(self.train[C.USER_ID].unique())]

    @property
    def evaluated_users(self) -> np.ndarray:
        return np.sort(self.relevant[C.USER_ID].unique())


def temporal_split(interactions: pd.DataFrame, test_share: float = TEST_SHARE) -> Split:
    """Each user's last `test_share` of interactions (by timestamp, then item_id) form the test set.

    The test size is round-half-up(test_share * n) and at least one, so a user with a single interaction
    has no training rows and is not evaluated.
    """
    df = interactions.sort_values([C.USER_ID, C.TIMESTAMP, C.ITEM_ID], kind="stable").reset_index(
        drop=True
    )
    n = df.groupby(C.USER_ID)[C.ITEM_ID].transform("size").to_numpy()
    pos = df.groupby(C.USER_ID).cumcount().to_numpy()
    n_test = np.maximum(1, np.floor(test_share * n + 0.5).astype(np.int64))  # rounded half up
    is_test = pos >= n - n_test
    return Split(df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True))


def top_k_positions(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the positions of the k largest scores, best first, equal scores by lower position:
    `np.argsort(-scores, axis=1, kind="stable")[:, :k]`, by a partition (linear in the row) and a
    sort of the few candidates per row. A full sort of 100,000 items for each of the gate's 100,000
    users took most of a quarter of an hour; the partition takes seconds."""
    n_rows, n = scores.shape
    if k >= n:
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]
    part = np.argpartition(scores, n - k, axis=1)[:, n - k :]  # no negated copy of the block
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1)  # each row's k-th best score
    # every score at least the k-th best (more than k on ties), by row, score down, position up
    rows, cols = np.nonzero(scores >= kth[:, None])
    order = np.lexsort((cols, -scores[rows, cols], rows))
    rows, cols = rows[order], cols[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(n_rows))[rows]
    keep = rank < k
    out = np.empty((n_rows, k), dtype=np.int64)
    out[rows[keep], rank[keep]] = cols[keep]
    return out


def top_k_unseen(
    users: np.ndarray,
    item_ids: np.ndarray,
    score_block: Callable[[np.ndarray], np.ndarray],
    seen: pd.DataFrame,
    k: int = K,
    block: int = SCORE_BLOCK_USERS,
) -> pd.DataFrame:
    """Top k items per user by score, never an item in the user's `seen` rows; ties by lower item_id.

    `score_block(user_ids)` returns a (len(user_ids), len(item_ids)) score matrix; users are scored in
    blocks so memory stays at block x items. Returns user_id, rank (1..k), item_id, score.
    """
    order = np.argsort(item_ids, kind="stable")
    item_ids = np.asarray(item_ids)[order]
    item_pos = pd.Index(item_ids)
    seen = seen[seen[C.USER_ID].isin(users)]
    seen_u = pd.Index(users).get_indexer(seen[C.USER_ID])
    seen_i = item_pos.get_indexer(seen[C.ITEM_ID])
    known = seen_i >= 0
    seen_u, seen_i = seen_u[known], seen_i[known]
    out = []
    kk = min(k, len(item_ids))
    for start in range(0, len(users), block):
        ids = users[start : start + block]
        scores = np.asarray(score_block(ids), dtype=np.float64)[:, order].copy()
        mask = (seen_u >= start) & (seen_u < start + len(ids))
        scores[seen_u[mask] - start, seen_i[mask]] = -np.inf
        top = top_k_positions(scores, kk)
        top_scores = np.take_along_axis(scores, top, axis=1)
        rows = np.repeat(ids, kk)
        frame = pd.DataFrame(
            {
                C.USER_ID: rows,
                C.RANK: np.tile(np.arange(1, kk + 1), len(ids)),
                C.ITEM_ID: item_ids[top].ravel(),
                C.SCORE: top_scores.ravel(),
            }
        )
        out.append(frame[np.isfinite(frame[C.SCORE])])
    if not out:
        return pd.DataFrame({C.USER_ID: [], C.RANK: [], C.ITEM_ID: [], C.SCORE: []})
    return pd.concat(out, ignore_index=True)


def ranking_metrics(
    recs: pd.DataFrame, relevant: pd.DataFrame, n_items: int, k: int = K
) -> dict[str, float]:
    """Recall@k, NDCG@k (binary relevance), Precision@k over the users of `relevant`, and catalogue coverage.

    `recs` has user_id, rank (1 = best), item_id; only ranks <= k count. Users in `relevant` without
    recommendations score 0. IDCG sums over min(#relevant, k) positions. Coverage is the share of the
    n_items catalogue recommended to at least one evaluated user.
    """
    users = np.sort(relevant[C.USER_ID].unique())
    if len(users) == 0:
        raise ValueError("no evaluated users: relevant is empty")
    top = recs[(recs[C.RANK] <= k) & recs[C.USER_ID].isin(users)]
    hits = top.merge(relevant[[C.USER_ID, C.ITEM_ID]].drop_duplicates(), on=[C.USER_ID, C.ITEM_ID])
    n_rel = relevant.groupby(C.USER_ID)[C.ITEM_ID].nunique().reindex(users)
    hit_count = hits.groupby(C.USER_ID).size().reindex(users, fill_value=0)
    dcg = 1.0 / np.log2(hits[C.RANK].to_numpy() + 1.0)
    dcg = (
        pd.Series(dcg, index=hits[C.USER_ID].to_numpy())
        .groupby(level=0)
        .sum()
        .reindex(users, fill_value=0.0)
    )
    discounts = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    idcg = discounts[np.minimum(n_rel.to_numpy(), k) - 1]
    return {
        f"recall@{k}": float(np.mean(hit_count.to_numpy() / n_rel.to_numpy())),
        f"ndcg@{k}": float(np.mean(dcg.to_numpy() / idcg)),
        f"precision@{k}": float(np.mean(hit_count.to_numpy() / k)),
        "coverage": float(top[C.ITEM_ID].nunique() / n_items) if n_items else 0.0,
        "users": int(len(users)),
    }


def rating_errors(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """RMSE and MAE of predicted ratings; NaN predictions are not allowed (callers fill them)."""
    predicted, actual = (
        np.asarray(predicted, dtype=np.float64),
        np.asarray(actual, dtype=np.float64),
    )
    if len(predicted) != len(actual) or not np.isfinite(predicted).all():
        raise ValueError("rating_errors needs aligned, finite predictions")
    err = predicted - actual
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
