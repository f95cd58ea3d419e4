import math

import numpy as np
import pandas as pd
import pytest

from recsys_core import columns as C
from recsys_core.evaluation.protocol import (
    ranking_metrics,
    rating_errors,
    temporal_split,
    top_k_unseen,
)


def frame(rows, cols=(C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP)):
    return pd.DataFrame(rows, columns=list(cols))


def recs(rows):
    return pd.DataFrame(rows, columns=[C.USER_ID, C.RANK, C.ITEM_ID])


def test_split_takes_the_last_fifth_rounded_half_up_and_at_least_one():
    rows = [(1, i, 4.0, 100 + i) for i in range(10)]  # 10 -> 2 test
    rows += [(2, i, 4.0, 100 + i) for i in range(3)]  # 0.6 -> 1
    rows += [(3, i, 4.0, 100 + i) for i in range(13)]  # 2.6 -> 3
    rows += [(4, 7, 5.0, 100)]  # 1 -> 1 test, no training
    rows += [(5, i, 4.0, 100 + i) for i in range(5)] + [
        (5, i, 4.0, 100 + i) for i in range(5, 8)
    ]  # 8 -> 1.6 -> 2
    split = temporal_split(frame(rows))
    n_test = split.test.groupby(C.USER_ID).size().to_dict()
    assert n_test == {1: 2, 2: 1, 3: 3, 4: 1, 5: 2}
    assert set(split.test[split.test[C.USER_ID] == 1][C.ITEM_ID]) == {8, 9}
    assert 4 not in set(split.train[C.USER_ID])
    assert 4 not in split.evaluated_users  # no training interaction


def test_split_orders_by_timestamp_then_item_id():
    # same timestamp: the higher item_id is "later"; input order must not matter
    rows = [
        (1, 30, 5.0, 200),
        (1, 10, 5.0, 200),
        (1, 20, 5.0, 200),
        (1, 99, 5.0, 50),
        (1, 5, 5.0, 300),
    ]
    split = temporal_split(frame(rows[::-1]))
    assert split.test[C.ITEM_ID].tolist() == [5]
    split = temporal_split(frame([r for r in rows if r[1] != 5]))
    assert split.test[C.ITEM_ID].tolist() == [30]


def test_relevant_needs_rating_four_and_a_training_history():
    rows = [(1, i, 3.0, i) for i in range(8)] + [(1, 8, 3.5, 8), (1, 9, 4.0, 9)]
    rows += [(2, i, 5.0, i) for i in range(4)] + [(2, 4, 3.0, 4)]
    split = temporal_split(frame(rows))
    assert split.relevant[[C.USER_ID, C.ITEM_ID]].values.tolist() == [[1, 9]]
    assert split.evaluated_users.tolist() == [1]  # user 2's only test item is rated 3


def test_perfect_ranking_scores_one_and_empty_ranking_zero():
    relevant = frame([(1, 5, 4.0, 0), (1, 6, 5.0, 0), (2, 7, 4.0, 0)])
    perfect = recs([(1, 1, 5), (1, 2, 6), (2, 1, 7)])
    m = ranking_metrics(perfect, relevant, n_items=100)
    assert m["ndcg@10"] == pytest.approx(1.0) and m["recall@10"] == pytest.approx(1.0)
    assert m["precision@10"] == pytest.approx((2 / 10 + 1 / 10) / 2)
    assert m["coverage"] == pytest.approx(3 / 100)
    empty = ranking_metrics(recs([]), relevant, n_items=100)
    assert empty["ndcg@10"] == 0 and empty["recall@10"] == 0 and empty["coverage"] == 0


def test_metrics_match_a_hand_computed_case():
    # user 1: relevant {5, 6, 7}; hits at ranks 2 and 4. user 2: relevant {9}; hit at rank 11 (beyond k)
    relevant = frame([(1, 5, 4.0, 0), (1, 6, 4.0, 0), (1, 7, 4.0, 0), (2, 9, 4.0, 0)])
    ranked = recs(
        [(1, 1, 1), (1, 2, 5), (1, 3, 2), (1, 4, 7)]
        + [(2, r, 100 + r) for r in range(1, 11)]
        + [(2, 11, 9)]
    )
    m = ranking_metrics(ranked, relevant, n_items=1000)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@10"] == pytest.approx((dcg / idcg + 0) / 2)
    assert m["recall@10"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["precision@10"] == pytest.approx((2 / 10 + 0) / 2)
    assert m["coverage"] == pytest.approx(14 / 1000)  # items 1, 5, 2, 7 and 101..110
    assert m["users"] == 2


def test_ideal_dcg_stops_at_k_positions():
    relevant = frame([(1, i, 5.0, 0) for i in range(20)])
    ranked = recs([(1, r + 1, r) for r in range(10)])
    assert ranking_metrics(ranked, relevant, 20)["ndcg@10"] == pytest.approx(1.0)
    assert ranking_metrics(ranked, relevant, 20)["recall@10"] == pytest.approx(0.5)


def test_top_k_unseen_never_returns_seen_items_and_breaks_ties_by_item_id():
    items = np.array([40, 10, 30, 20])
    scores = {1: [1.0, 1.0, 0.5, 1.0], 2: [0.1, 0.2, 0.3, 0.4]}  # aligned with `items`
    seen = frame([(1, 10, 5.0, 0), (2, 20, 1.0, 0)])
    out = top_k_unseen(
        np.array([1, 2]), items, lambda ids: np.array([scores[u] for u in ids]), seen, k=3, block=1
    )
    by_user = out.groupby(C.USER_ID)[C.ITEM_ID].apply(list).to_dict()
    assert by_user[1] == [20, 40, 30]  # 10 seen; 20 and 40 tie at 1.0: lower id first
    assert by_user[2] == [30, 10, 40]
    assert out[C.RANK].tolist() == [1, 2, 3, 1, 2, 3]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3, 10, 40])
def test_top_k_positions_is_the_stable_sort_with_ties_and_unseen_rows(seed, k):
    """The partition gives what the full stable sort gives: ties by lower position, rows with fewer
    than k finite scores, a row of one repeated score."""
    from recsys_core.evaluation.protocol import top_k_positions

    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=(9, 40)).astype(np.float64)  # many ties
    scores[rng.random(scores.shape) < 0.3] = -np.inf  # seen items
    scores[4, 2:] = -np.inf  # two finite scores only
    scores[5] = 1.0  # all equal
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(top_k_positions(scores, k), expected)


def test_top_k_unseen_gives_fewer_rows_when_the_user_has_seen_almost_everything():
    seen = frame([(1, 1, 5.0, 0), (1, 2, 5.0, 0)])
    out = top_k_unseen(
        np.array([1]), np.array([1, 2, 3]), lambda ids: np.ones((len(ids), 3)), seen, k=10
    )
    assert out[C.ITEM_ID].tolist() == [3]


def test_rating_errors():
    m = rating_errors(np.array([3.0, 5.0]), np.array([4.0, 5.0]))
    assert m["rmse"] == pytest.approx(math.sqrt(0.5)) and m["mae"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        rating_errors(np.array([np.nan]), np.array([1.0]))
