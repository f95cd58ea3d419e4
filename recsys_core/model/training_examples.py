"""Training examples for the towers: aligned user features, item features and targets.

Regression trains on every interaction's rating. Classification labels an interaction 1 when it is
"liked" (rating >= like_threshold) or, for implicit data, whenever it happened (label = "interacted");
with `negatives` > 0 it adds that many uniformly sampled items the user never interacted with per
interaction, labelled 0 (SEED.md: "interaction vs sampled non-interaction").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys_core import columns as C
from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.features.names import feature_columns
from recsys_core.io.sorted_keys import distinct, member, positions

PAIR_CHUNK_ROWS = 2_000_000


def without_pairs(interactions: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """The interactions whose (user_id, item_id) is not one of `pairs`' (every interaction of such a
    pair goes, as a left anti-join drops it), in their order. Binary searches over the pairs'
    distinct users and items, PAIR_CHUNK_ROWS interactions at a time: a mask and the copy kept are
    what it adds to its input, where a pandas merge of 50,000,000 interactions added 6 GB."""
    users = distinct(pairs[C.USER_ID].to_numpy(np.int64))
    items = distinct(pairs[C.ITEM_ID].to_numpy(np.int64))

    def keys(frame: pd.DataFrame) -> np.ndarray:
        """A pair's key: its user's place among `users` times len(items) plus its item's; -1 when
        either is not among them."""
        u = positions(users, frame[C.USER_ID].to_numpy(np.int64))
        i = positions(items, frame[C.ITEM_ID].to_numpy(np.int64))
        return np.where((u >= 0) & (i >= 0), u * len(items) + i, -1)

    held = distinct(keys(pairs))
    drop = np.zeros(len(interactions), bool)
    for start in range(0, len(interactions), PAIR_CHUNK_ROWS):  # bounded temporaries
        found = keys(interactions.iloc[start : start + PAIR_CHUNK_ROWS])
        drop[start : start + len(found)] = (found >= 0) & member(found, held)
    if not drop.any():
        return interactions
    kept = interactions[~drop]
    kept.index = pd.RangeIndex(len(kept))  # not reset_index, which copies the frame once more
    return kept


def training_examples(
    interactions: pd.DataFrame,
    user_features: pd.DataFrame,
    item_features: pd.DataFrame,
    cfg: ModelConfig,
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(user feature rows, item feature rows, targets) in memory: ratings in regression mode, booleans
    in classification mode. Interactions with a user or item missing from the feature tables are skipped."""
    u = pd.Index(user_features[C.USER_ID]).get_indexer(interactions[C.USER_ID])
    i = pd.Index(item_features[C.ITEM_ID]).get_indexer(interactions[C.ITEM_ID])
    known = (u >= 0) & (i >= 0)
    if not known.any():
        raise RecsysError("no interaction refers to a known user and item: nothing to train on")
    ratings = interactions[C.RATING].to_numpy(dtype=np.float64)[known]
    u, i, targets = labelled(u[known], i[known], ratings, len(item_features), cfg, cfg.seed)
    ucols = feature_columns(list(user_features.columns), C.USER_ID)
    icols = feature_columns(list(item_features.columns), C.ITEM_ID)
    return (
        user_features[ucols].iloc[u].reset_index(drop=True),
        item_features[icols].iloc[i].reset_index(drop=True),
        targets,
    )


def labelled(
    u: np.ndarray,
    i: np.ndarray,
    ratings: np.ndarray,
    n_items: int,
    cfg: ModelConfig,
    seed,
    known: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interactions (user and item positions, ratings) as training examples: the ratings in regression
    mode; in classification mode the labels, followed by `cfg.negatives` sampled negatives per
    interaction (never a pair in `known`, default the pairs given)."""
    if cfg.mode == "regression":
        return u, i, ratings
    targets = ratings >= cfg.like_threshold if cfg.label == "liked" else np.ones(len(u), dtype=bool)
    if not cfg.negatives:
        return u, i, targets
    nu, ni = sample_negatives(u, i, n_items, cfg.negatives, seed, known)
    return (
        np.concatenate([u, nu]),
        np.concatenate([i, ni]),
        np.concatenate([targets, np.zeros(len(nu), dtype=bool)]),
    )


def sample_negatives(
    user_pos: np.ndarray,
    item_pos: np.ndarray,
    n_items: int,
    per_positive: int,
    seed,
    known: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`per_positive` uniformly drawn (user, item) pairs per interaction, minus pairs the user interacted
    with (a few draws are lost that way rather than redrawn, which keeps this one vectorised pass).
    `known`: sorted keys user * n_items + item of every interaction, when more than the ones given."""
    rng = np.random.default_rng(seed)
    users = np.repeat(user_pos, per_positive)
    items = rng.integers(0, n_items, size=len(users))
    if known is None:
        known = np.unique(user_pos.astype(np.int64) * n_items + item_pos)
    fresh = ~member(users.astype(np.int64) * n_items + items, known)
    return users[fresh], items[fresh]


def example_chunks(
    batches: Callable[[], Iterable[pa.RecordBatch]],
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    cfg: ModelConfig,
    exclude: pd.DataFrame | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Training examples chunk by chunk, never the whole table in memory: (user row, item row, target)
    per interaction batch of `batches()` (user_id, item_id, rating), the target being the rating in
    regression mode and the 0/1 label in classification mode, negatives included. `user_ids` and
    `item_ids` are the sorted ids of the feature rows; interactions naming others are skipped, and so
    are the (user_id, item_id) pairs of `exclude`. `batches` is read twice: the first pass collects
    every pair so that no sampled negative is an interaction of another batch."""
    n_items = len(item_ids)

    def pairs(users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u, i = positions(user_ids, users), positions(item_ids, items)
        return u, i, u.astype(np.int64) * n_items + i

    skip = np.empty(0, np.int64)
    if exclude is not None and len(exclude):
        u, i, key = pairs(exclude[C.USER_ID].to_numpy(), exclude[C.ITEM_ID].to_numpy())
        skip = np.unique(key[(u >= 0) & (i >= 0)])

    def rows(batch):
        u, i, key = pairs(batch.column(C.USER_ID).to_numpy(), batch.column(C.ITEM_ID).to_numpy())
        keep = (u >= 0) & (i >= 0) & ~member(key, skip)
        return u[keep], i[keep], batch.column(C.RATING).to_numpy().astype(np.float64)[keep]

    seen = [u.astype(np.int64) * n_items + i for u, i, _ in map(rows, batches())]
    known = np.unique(np.concatenate(seen)) if seen else np.empty(0, np.int64)
    del seen
    if len(known) == 0:
        raise RecsysError("no interaction refers to a known user and item: nothing to train on")
    for index, batch in enumerate(batches()):
        u, i, ratings = rows(batch)
        chunk_seed = np.random.SeedSequence(cfg.seed, spawn_key=(index,))
        u, i, targets = labelled(u, i, ratings, n_items, cfg, chunk_seed, known)
        yield u, i, targets.astype(np.float32)


def feature_matrices(
    users: pd.DataFrame, items: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(user matrix, item matrix, user feature columns, item feature columns): the rows examples point at."""
    ucols = feature_columns(list(users.columns), C.USER_ID)
    icols = feature_columns(list(items.columns), C.ITEM_ID)
    return users[ucols].to_numpy(np.float64), items[icols].to_numpy(np.float64), ucols, icols
