"""Ranking: score each user's candidates by v_u . v_m and keep the top N (SEED.md "Ranking")."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_core import columns as C
from recsys_core.errors import RecsysError


def rank_candidates(
    candidates: pd.DataFrame,
    user_ids: np.ndarray,
    user_embeddings: np.ndarray,
    item_ids: np.ndarray,
    item_embeddings: np.ndarray,
    top_n: int,
) -> pd.DataFrame:
    """Top `top_n` candidates per user by score, highest first (ties: lower item_id first).

    `candidates` has user_id, item_id and reasons; the embeddings are computed once per user and
    once per item beforehand. Returns user_id, rank (1..), item_id, score, reason.
    """
    u_pos = pd.Index(user_ids).get_indexer(candidates[C.USER_ID])
    i_pos = pd.Index(item_ids).get_indexer(candidates[C.ITEM_ID])
    if (u_pos < 0).any() or (i_pos < 0).any():
        missing_u = candidates[C.USER_ID][u_pos < 0].unique()[:5].tolist()
        missing_i = candidates[C.ITEM_ID][i_pos < 0].unique()[:5].tolist()
        raise RecsysError(f"candidates without embeddings: users {missing_u}, items {missing_i}")
    scores = np.einsum("ij,ij->i", user_embeddings[u_pos], item_embeddings[i_pos])
    users = candidates[C.USER_ID].to_numpy()
    items = candidates[C.ITEM_ID].to_numpy()
    order = np.lexsort((items, -scores, users))
    users_sorted = users[order]
    starts = np.r_[0, np.flatnonzero(users_sorted[1:] != users_sorted[:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    rank = np.arange(len(order)) - group_start + 1
    keep = rank <= top_n
    chosen = order[keep]
    reasons = candidates[C.REASONS].to_numpy()[chosen]
    return pd.DataFrame(
        {
            C.USER_ID: users[chosen],
            C.RANK: rank[keep].astype(np.int32),
            C.ITEM_ID: items[chosen],
            C.SCORE: scores[chosen].astype(np.float64),
            C.REASON: ["; ".join(r) for r in reasons],
        }
    )
