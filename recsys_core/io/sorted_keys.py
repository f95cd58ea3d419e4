"""Lookups in sorted integer arrays (catalogue ids, (user, item) pair keys): binary searches, so the
arrays may hold tens of millions of keys."""

from __future__ import annotations

import numpy as np


def positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Index of each id in `sorted_ids`, -1 where it is absent."""
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
    return np.where(sorted_ids[at] == ids, at, -1)


def member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """keys found in the sorted array sorted_keys."""
    return positions(sorted_keys, keys) >= 0


def distinct(values: np.ndarray, presorted: bool = False) -> np.ndarray:
    """Sorted distinct values, by a sort (numpy 2's np.unique hashes int64, which costs more)."""
    values = values if presorted else np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values
