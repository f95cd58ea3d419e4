"""Item-to-item baselines of the offline evaluation: EASE (closed form) and item-kNN (cosine), each
scoring a user's unseen items by the items of their history, each with its one setting chosen on the
protocol's validation split inside the training interactions (never on the test set).

Both read the binary user x item matrix X of the training interactions (an interaction is a 1, as for
implicit ALS). EASE (Steck, 2019): B = I - P / diag(P) column-wise with P = (X'X + reg I)^-1, the
diagonal of B zero; a user's scores are x_u B. Item-kNN: the cosine similarity of item columns, each
item keeping its `neighbors` most similar items; a user's scores are the summed similarities of their
history's items. Only the most interacted items (at most MAX_ITEMS) are scored: both need dense
items x items matrices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from recsys_core import columns as C
from recsys_core.evaluation.protocol import K, ranking_metrics, temporal_split, top_k_unseen

# the grids the validation split chooses from: EASE's L2 weight, item-kNN's neighborhood size
EASE_REGS = (25.0, 100.0, 400.0, 1600.0, 6400.0)  # x4 apart: one inversion each
KNN_NEIGHBORS = (20, 50, 100, 200, 400)
# items x items matrices in float64: 15,000 items are 1.8 GB each, and EASE holds two of them
MAX_ITEMS = 15_000
UNSCORED = -1e9  # items outside the scored set: below every real score, still a finite number


@dataclass
class ItemToItem:
    """Scores of unseen items as history @ weights: one row of X per user, one weights matrix."""

    user_ids: np.ndarray
    item_ids: np.ndarray  # every catalogue item, sorted
    scored: np.ndarray  # positions in item_ids of the items the weights cover
    history: sparse.csr_matrix  # users x scored items, 1 for an interaction
    weights: np.ndarray  # scored x scored
    chosen: dict = field(default_factory=dict)  # the setting chosen and the validation figures

    def score_block(self, user_ids: np.ndarray) -> np.ndarray:
        pos = pd.Index(self.user_ids).get_indexer(user_ids)
        scores = np.full((len(user_ids), len(self.item_ids)), UNSCORED)
        known = pos >= 0
        scores[np.ix_(known, self.scored)] = self.history[pos[known]] @ self.weights
        return scores

    def recommend(self, users: np.ndarray, seen: pd.DataFrame, k: int = K) -> pd.DataFrame:
        return top_k_unseen(users, self.item_ids, self.score_block, seen, k)


def interaction_matrix(
    train: pd.DataFrame, item_ids: np.ndarray, max_items: int = MAX_ITEMS
) -> tuple[np.ndarray, np.ndarray, sparse.csr_matrix]:
    """(user ids, positions in item_ids of the scored items, binary users x scored items matrix): the
    scored items are the max_items most interacted ones (ties: lower id), in item_ids order."""
    pairs = train[[C.USER_ID, C.ITEM_ID]].drop_duplicates()
    pos = pd.Index(item_ids).get_indexer(pairs[C.ITEM_ID])
    pairs, pos = pairs[pos >= 0], pos[pos >= 0]
    counts = np.bincount(pos, minlength=len(item_ids))
    ranked = np.lexsort((np.arange(len(item_ids)), -counts))
    scored = np.sort(ranked[: min(max_items, int((counts > 0).sum()))])
    column = np.full(len(item_ids), -1)
    column[scored] = np.arange(len(scored))
    keep = column[pos] >= 0
    user_ids, rows = np.unique(pairs[C.USER_ID].to_numpy()[keep], return_inverse=True)
    x = sparse.csr_matrix(
        (np.ones(int(keep.sum())), (rows, column[pos[keep]])), shape=(len(user_ids), len(scored))
    )
    return user_ids, scored, x


def ease_weights(gram: np.ndarray, reg: float) -> np.ndarray:
    p = np.linalg.inv(gram + reg * np.eye(len(gram)))
    b = p / -np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b


def knn_weights(gram: np.ndarray, neighbors: int) -> np.ndarray:
    """Cosine similarity of item columns, each row keeping its `neighbors` largest (not itself)."""
    norm = np.sqrt(np.diag(gram))
    sim = gram / np.outer(norm, norm).clip(min=1e-12)
    np.fill_diagonal(sim, 0.0)
    if neighbors < len(sim):
        cut = np.argpartition(-sim, neighbors - 1, axis=1)[:, neighbors:]
        np.put_along_axis(sim, cut, 0.0, axis=1)
    return sim


def _fit(train: pd.DataFrame, item_ids: np.ndarray, weights_of, setting) -> ItemToItem:
    user_ids, scored, x = interaction_matrix(train, item_ids)
    gram = (x.T @ x).toarray()
    return ItemToItem(user_ids, item_ids, scored, x, weights_of(gram, setting))


def _choose(train: pd.DataFrame, item_ids: np.ndarray, weights_of, grid, name: str) -> dict:
    """The setting of `grid` with the best NDCG@10 on the validation split inside `train`."""
    inner = temporal_split(train)
    users = inner.evaluated_users
    if not len(users):  # no relevant validation row to judge by: the grid's middle value
        return {name: grid[len(grid) // 2], "validation_ndcg@10": {}}
    user_ids, scored, x = interaction_matrix(inner.train, item_ids)
    gram = (x.T @ x).toarray()
    figures = {}
    for setting in grid:
        model = ItemToItem(user_ids, item_ids, scored, x, weights_of(gram, setting))
        recs = model.recommend(users, inner.train)
        figures[setting] = ranking_metrics(recs, inner.relevant, len(item_ids))["ndcg@10"]
    best = max(grid, key=lambda s: (figures[s], -grid.index(s)))  # ties: the first in the grid
    return {name: best, "validation_ndcg@10": {str(s): round(v, 5) for s, v in figures.items()}}


def ease(train: pd.DataFrame, item_ids: np.ndarray, regs=EASE_REGS) -> ItemToItem:
    """EASE fitted on `train` with the L2 weight that ranks best on the validation split inside it."""
    chosen = _choose(train, item_ids, ease_weights, tuple(regs), "reg")
    model = _fit(train, item_ids, ease_weights, chosen["reg"])
    model.chosen = chosen
    return model


def item_knn(train: pd.DataFrame, item_ids: np.ndarray, grid=KNN_NEIGHBORS) -> ItemToItem:
    """Item-kNN (cosine) fitted on `train` with the neighborhood the validation split inside it prefers."""
    chosen = _choose(train, item_ids, knn_weights, tuple(grid), "neighbors")
    model = _fit(train, item_ids, knn_weights, chosen["neighbors"])
    model.chosen = chosen
    return model
