"""Lookups in sorted arrays: positions, membership and distinct values."""

import numpy as np

from recsys_core.io.sorted_keys import distinct, member, positions


def test_positions_finds_each_id_and_marks_absent_ones_including_beyond_both_ends():
    ids = np.array([3, 7, 9])
    assert positions(ids, np.array([9, 1, 7, 10, 3, 8])).tolist() == [2, -1, 1, -1, 0, -1]
    assert positions(np.array([], dtype=np.int64), np.array([1, 2])).tolist() == [-1, -1]
    assert member(np.array([7, 8]), ids).tolist() == [True, False]


def test_distinct_sorts_and_drops_repeats_and_trusts_presorted_input():
    assert distinct(np.array([5, 1, 5, 3, 1])).tolist() == [1, 3, 5]
    assert distinct(np.array([1, 1, 2, 4, 4]), presorted=True).tolist() == [1, 2, 4]
    assert distinct(np.array([], dtype=np.int64)).tolist() == []
