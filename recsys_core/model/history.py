"""Users' interaction histories in time order: the sequences the softmax towers train on and the recent
items the user tower reads.

A history is the user's interactions sorted by (timestamp, item_id), the order of the offline
protocol's split. The user tower reads the last `length` item ids of it, newest last, padded at the
front with PAD.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_core import columns as C

PAD = -1  # an empty history slot (an item id is never negative)


@dataclass(frozen=True)
class Sequences:
    """Interactions sorted by user, then (timestamp, item_id): one row per interaction."""

    user_ids: np.ndarray  # int64
    item_ids: np.ndarray  # int64
    ratings: np.ndarray  # float64
    start: np.ndarray  # per row: the index of its user's first row
    timestamps: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.user_ids)

    @classmethod
    def of(cls, interactions: pd.DataFrame) -> Sequences:
        """From a frame with user_id, item_id, timestamp and (optionally) rating."""
        order = np.lexsort(
            (
                interactions[C.ITEM_ID].to_numpy(),
                interactions[C.TIMESTAMP].to_numpy(),
                interactions[C.USER_ID].to_numpy(),
            )
        )
        users = interactions[C.USER_ID].to_numpy(np.int64)[order]
        ratings = (
            interactions[C.RATING].to_numpy(np.float64)[order]
            if C.RATING in interactions
            else np.ones(len(order))
        )
        first = np.r_[True, users[1:] != users[:-1]] if len(users) else np.zeros(0, bool)
        start = np.maximum.accumulate(np.where(first, np.arange(len(users)), 0))
        items = interactions[C.ITEM_ID].to_numpy(np.int64)[order]
        times = interactions[C.TIMESTAMP].to_numpy(np.int64)[order]
        return cls(users, items, ratings, start, times)

    def window_rows(self, rows: np.ndarray, length: int) -> np.ndarray:
        """The row indices of the `length` interactions before each of `rows` (the row itself
        excluded), newest last, PAD where the user's history is shorter."""
        rows = np.asarray(rows, dtype=np.int64)
        back = rows[:, None] - length + np.arange(length)[None, :]
        return np.where(back >= self.start[rows][:, None], back, PAD)

    def windows(self, rows: np.ndarray, length: int) -> np.ndarray:
        """The item ids of window_rows, PAD kept."""
        back = self.window_rows(rows, length)
        return np.where(back >= 0, self.item_ids[np.clip(back, 0, None)], PAD)

    def recent(self, users: np.ndarray, length: int) -> np.ndarray:
        """The last `length` item ids of each of `users` (all of PAD for a user without history)."""
        users = np.asarray(users, dtype=np.int64)
        if len(self) == 0:
            return np.full((len(users), length), PAD, dtype=np.int64)
        ends = np.searchsorted(self.user_ids, users, side="right")  # one past the user's last row
        last = np.clip(ends - 1, 0, None)
        known = (ends > 0) & (self.user_ids[last] == users)
        back = ends[:, None] - length + np.arange(length)[None, :]
        keep = known[:, None] & (back >= self.start[last][:, None])
        return np.where(keep, self.item_ids[np.clip(back, 0, len(self) - 1)], PAD)


def recent_items(interactions: pd.DataFrame, users: np.ndarray, length: int) -> np.ndarray:
    """(len(users), length) item ids: each user's most recent interactions, newest last, PAD-padded."""
    return Sequences.of(interactions).recent(users, length)
