"""Users' interaction histories (recsys_core.model.history) and the id vocabulary of the softmax towers:
time order, the windows of items before an interaction, a user's recent items, id indices. No TensorFlow."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_core import columns as C
from recsys_core.model.history import PAD, Sequences, recent_items
from recsys_core.model.two_tower import Vocabulary

# two users, rows deliberately shuffled; user 7 has a timestamp tie (items 30 and 20 at t=5)
INTER = pd.DataFrame(
    {
        C.USER_ID: [7, 3, 7, 3, 7, 7, 3],
        C.ITEM_ID: [30, 11, 20, 12, 40, 10, 13],
        C.RATING: [5.0, 1.0, 4.0, 2.0, 3.0, 2.5, 3.5],
        C.TIMESTAMP: [5, 300, 5, 200, 9, 1, 100],
    }
)
# the expected order: user 3 by time (13@100, 12@200, 11@300), then user 7 (10@1, 20@5, 30@5, 40@9)
ORDERED_USERS = [3, 3, 3, 7, 7, 7, 7]
ORDERED_ITEMS = [13, 12, 11, 10, 20, 30, 40]


def test_of_sorts_by_user_then_timestamp_then_item_id():
    """Rows come out grouped by user, in time order, a timestamp tie broken by the smaller item id first;
    ratings travel with their rows and `start` points at each row's user's first row."""
    seq = Sequences.of(INTER)
    assert len(seq) == 7
    assert seq.user_ids.tolist() == ORDERED_USERS
    assert seq.item_ids.tolist() == ORDERED_ITEMS
    assert seq.ratings.tolist() == [3.5, 2.0, 1.0, 2.5, 4.0, 5.0, 3.0]
    assert seq.start.tolist() == [0, 0, 0, 3, 3, 3, 3]
    assert seq.user_ids.dtype == np.int64 and seq.item_ids.dtype == np.int64


def test_of_breaks_ties_by_item_id_whatever_the_input_order():
    """The same interactions in any row order give the same sequences (the tie at t=5 included)."""
    reference = Sequences.of(INTER)
    for seed in range(5):
        shuffled = INTER.sample(frac=1.0, random_state=seed)
        seq = Sequences.of(shuffled)
        np.testing.assert_array_equal(seq.item_ids, reference.item_ids)
        np.testing.assert_array_equal(seq.ratings, reference.ratings)


def test_of_without_ratings_counts_each_interaction_as_one():
    """A frame without a rating column (implicit data) gives a rating of 1 per row."""
    seq = Sequences.of(INTER.drop(columns=C.RATING))
    assert seq.ratings.tolist() == [1.0] * 7
    assert seq.item_ids.tolist() == ORDERED_ITEMS


def test_windows_hold_the_previous_items_newest_last_and_pad_at_the_front():
    """Each row's window is the items strictly before it, the newest at the end, PAD where the user's
    history is shorter than the window; a user's first row has an all-PAD window."""
    seq = Sequences.of(INTER)
    # rows of user 7: 3 (item 10), 4 (20), 5 (30), 6 (40)
    windows = seq.windows(np.array([3, 4, 5, 6]), 3)
    assert windows.tolist() == [
        [PAD, PAD, PAD],
        [PAD, PAD, 10],
        [PAD, 10, 20],
        [10, 20, 30],
    ]
    # a window shorter than the history keeps only the newest items
    assert seq.windows(np.array([6]), 2).tolist() == [[20, 30]]
    # the row indices behind the items, PAD for the empty slots
    assert seq.window_rows(np.array([5]), 3).tolist() == [[PAD, 3, 4]]


def test_windows_never_cross_into_the_previous_users_rows():
    """User 7's first rows sit right after user 3's rows; their windows stay PAD there, not user 3's items."""
    seq = Sequences.of(INTER)
    windows = seq.windows(np.array([3, 4]), 5)
    assert windows.tolist() == [[PAD] * 5, [PAD] * 4 + [10]]
    assert not np.isin(windows, [11, 12, 13]).any()
    # and user 3's last row sees only user 3's items
    assert seq.windows(np.array([2]), 4).tolist() == [[PAD, PAD, 13, 12]]


def test_recent_returns_each_users_last_items_newest_last():
    """recent(users, length): the last `length` items of each user in time order, PAD-padded at the
    front for a user with fewer; users may be asked in any order and more than once."""
    seq = Sequences.of(INTER)
    assert seq.recent(np.array([7, 3, 7]), 2).tolist() == [[30, 40], [12, 11], [30, 40]]
    assert seq.recent(np.array([3]), 5).tolist() == [[PAD, PAD, 13, 12, 11]]
    assert seq.recent(np.array([7]), 4).tolist() == [[10, 20, 30, 40]]


def test_recent_of_an_unknown_user_is_all_pad():
    """Users without any interaction get rows of PAD: ids below, between and above the known ones."""
    seq = Sequences.of(INTER)
    got = seq.recent(np.array([1, 5, 3, 99]), 3)
    assert got.tolist() == [[PAD] * 3, [PAD] * 3, [13, 12, 11], [PAD] * 3]
    assert got.dtype == np.int64


def test_recent_of_an_empty_table_is_all_pad():
    """An empty interaction table (no user has a history) gives all-PAD rows of the asked shape."""
    empty = Sequences.of(INTER.iloc[:0])
    assert len(empty) == 0
    got = empty.recent(np.array([3, 7]), 4)
    assert got.shape == (2, 4)
    assert (got == PAD).all()
    assert recent_items(INTER.iloc[:0], np.array([1]), 2).tolist() == [[PAD, PAD]]


def test_recent_items_reads_an_unsorted_frame():
    """recent_items is Sequences.of(...).recent(...): it sorts the frame itself."""
    assert recent_items(INTER, np.array([7, 3]), 3).tolist() == [[20, 30, 40], [13, 12, 11]]


def test_vocabulary_maps_known_ids_to_position_plus_one_and_the_rest_to_zero():
    """Known ids map to their position in the sorted vocabulary + 1; unknown ids (below, between and
    above the known ones) and PAD map to index 0, in any array shape."""
    vocab = Vocabulary(np.array([3, 7], dtype=np.int64), np.array([10, 20, 40], dtype=np.int64), 5)
    assert vocab.user_index([3, 7, 1, 5, 99, PAD]).tolist() == [1, 2, 0, 0, 0, 0]
    assert vocab.item_index([40, 10, 20, 30, 5, 41, PAD]).tolist() == [3, 1, 2, 0, 0, 0, 0]
    histories = np.array([[PAD, PAD, 10], [20, 30, 40]])
    index = vocab.item_index(histories)
    assert index.shape == (2, 3)
    assert index.tolist() == [[0, 0, 1], [2, 0, 3]]


def test_vocabulary_save_and_load_round_trip(tmp_path):
    """The vocabulary file keeps the ids and the history length."""
    vocab = Vocabulary(np.array([3, 7], dtype=np.int64), np.array([10, 20, 40], dtype=np.int64), 5)
    path = tmp_path / "vocabulary.npz"
    vocab.save(path)
    back = Vocabulary.load(path)
    np.testing.assert_array_equal(back.user_ids, vocab.user_ids)
    np.testing.assert_array_equal(back.item_ids, vocab.item_ids)
    assert back.history_length == 5
    assert back.item_index([20, 30]).tolist() == [2, 0]
