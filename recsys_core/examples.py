"""Training examples for the towers: aligned user features, item features and targets.

Regression trains on every interaction's rating. Classification labels an interaction 1 when it is
"liked" (rating >= like_threshold) or, for implicit data, whenever it happened (label = "interacted");
with `negatives` > 0 it adds that many uniformly sampled items the user never interacted with per
interaction, labelled 0 (SEED.md: "interaction vs sampled non-interaction").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_core import columns as C
from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.features import feature_columns


def training_examples(
    interactions: pd.DataFrame, user_features: pd.DataFrame, item_features: pd.DataFrame, cfg: ModelConfig
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(user feature rows, item feature rows, targets): ratings in regression mode, booleans in
    classification mode. Interactions with a user or item missing from the feature tables are skipped."""
    u = pd.Index(user_features[C.USER_ID]).get_indexer(interactions[C.USER_ID])
    i = pd.Index(item_features[C.ITEM_ID]).get_indexer(interactions[C.ITEM_ID])
    known = (u >= 0) & (i >= 0)
    if not known.any():
        raise RecsysError("no interaction refers to a known user and item: nothing to train on")
    u, i = u[known], i[known]
    ratings = interactions[C.RATING].to_numpy(dtype=np.float64)[known]
    if cfg.mode == "regression":
        targets: np.ndarray = ratings
    else:
        targets = ratings >= cfg.like_threshold if cfg.label == "liked" else np.ones(len(u), dtype=bool)
        if cfg.negatives:
            nu, ni = sample_negatives(u, i, len(item_features), cfg.negatives, cfg.seed)
            u, i = np.concatenate([u, nu]), np.concatenate([i, ni])
            targets = np.concatenate([targets, np.zeros(len(nu), dtype=bool)])
    ucols = feature_columns(list(user_features.columns), C.USER_ID)
    icols = feature_columns(list(item_features.columns), C.ITEM_ID)
    return (
        user_features[ucols].iloc[u].reset_index(drop=True),
        item_features[icols].iloc[i].reset_index(drop=True),
        targets,
    )


def sample_negatives(
    user_pos: np.ndarray, item_pos: np.ndarray, n_items: int, per_positive: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`per_positive` uniformly drawn (user, item) pairs per interaction, minus pairs the user interacted
    with (a few draws are lost that way rather than redrawn, which keeps this one vectorised pass)."""
    rng = np.random.default_rng(seed)
    users = np.repeat(user_pos, per_positive)
    items = rng.integers(0, n_items, size=len(users))
    pair = user_pos.astype(np.int64) * n_items + item_pos
    drawn = users.astype(np.int64) * n_items + items
    fresh = ~np.isin(drawn, pair)
    return users[fresh], items[fresh]
