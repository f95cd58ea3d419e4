"""Tests of ranking candidates by v_u . v_m in Spark (SEED.md "Ranking")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core import columns as C
from recsys_core.candidates import ranking
from recsys_core.candidates.ranking import (
    best_new,
    new_arrivals,
    prediction,
    rank_candidates,
    top_by_score,
)
from recsys_core.errors import RecsysError

pytestmark = pytest.mark.spark

# 2-d embeddings with exactly representable dot products
USER_IDS = np.array([2, 1])
USER_EMB = np.array([[0.0, 1.0], [1.0, 0.0]])  # user 2 -> (0, 1), user 1 -> (1, 0)
ITEM_IDS = np.array([14, 13, 12, 11, 10])
ITEM_EMB = np.array([[-1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])


def candidates(rows: list[tuple[int, int, list[str]]]) -> pd.DataFrame:
    """Retrieval's per-user rows from (user, item, reasons) triples, items kept in the given order."""
    users = list(dict.fromkeys(u for u, _, _ in rows))
    return pd.DataFrame(
        {
            "user_id": users,
            "item_id": [[i for u2, i, _ in rows if u2 == u] for u in users],
            "reasons": [[r for u2, _, r in rows if u2 == u] for u in users],
        }
    )


CANDIDATES = candidates(
    [
        (1, 14, ["top_global:x"]),
        (2, 12, ["top_genre:Drama"]),
        (1, 13, ["top_genre:Drama", "similar_to:12"]),
        (1, 11, ["similar_to:10"]),
        (2, 10, ["top_country:DE", "top_genre:Comedy", "popular_fill:1"]),
        (1, 10, ["top_country:DE"]),
        (1, 12, ["top_genre:Comedy"]),
    ]
)


@pytest.fixture(scope="module")
def rank(spark):
    schema = "user_id long, item_id array<long>, reasons array<array<string>>"

    def run(cands: pd.DataFrame = CANDIDATES, top_n: int = 3) -> pd.DataFrame:
        frame = spark.createDataFrame(cands, schema)
        out = rank_candidates(frame, USER_IDS, USER_EMB, ITEM_IDS, ITEM_EMB, top_n).toPandas()
        return out.sort_values(["user_id", "rank"]).reset_index(drop=True)

    return run


def test_orders_by_score_descending_and_breaks_score_ties_by_lower_item_id(rank):
    out = rank(top_n=10)
    user1 = out[out.user_id == 1]
    # scores of user (1, 0): 10 -> 1, 11 -> .5, 13 -> .5, 12 -> 0, 14 -> -1
    assert user1.item_id.tolist() == [10, 11, 13, 12, 14]
    assert user1.score.tolist() == [1.0, 0.5, 0.5, 0.0, -1.0]


def test_top_n_cuts_each_user_and_fewer_candidates_than_top_n_keeps_all(rank):
    out = rank(top_n=3)
    assert out[out.user_id == 1].item_id.tolist() == [10, 11, 13]
    assert out[out.user_id == 2].item_id.tolist() == [12, 10]  # only two candidates
    assert out[out.user_id == 2].score.tolist() == [1.0, 0.0]
    assert len(rank(top_n=1)) == 2


def test_top_by_score_cuts_rows_of_any_length_by_score_then_item_id():
    # rows of 3, 0 and 2 candidates: row 0 holds ids 13, 11, 14 (scores .5, .5, -1), row 2 ids 14, 12
    offsets = np.array([0, 3, 3, 5])
    items = np.array([1, 3, 0, 0, 2])  # positions into ITEM_IDS / ITEM_EMB
    users = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    row, index, scores = top_by_score(
        users, offsets, items, ITEM_IDS, ITEM_EMB.astype(np.float32), top_n=2
    )
    assert row.tolist() == [0, 0, 2, 2]
    assert ITEM_IDS[items[index]].tolist() == [11, 13, 12, 14]
    assert scores.tolist() == [0.5, 0.5, 1.0, 0.0]  # the tie at the cut goes to the lower id


def test_ranks_are_contiguous_from_one_per_user(rank):
    out = rank(top_n=4)
    assert out.columns.tolist() == ["user_id", "rank", "item_id", "score", "reason"]
    assert out.groupby("user_id")["rank"].apply(list).to_dict() == {1: [1, 2, 3, 4], 2: [1, 2]}


def test_reasons_are_joined_with_semicolons_and_follow_their_item(rank):
    out = rank(top_n=10).set_index(["user_id", "item_id"])["reason"]
    assert out[(1, 13)] == "top_genre:Drama; similar_to:12"
    assert out[(2, 10)] == "top_country:DE; top_genre:Comedy; popular_fill:1"
    assert out[(1, 10)] == "top_country:DE"
    assert out[(2, 12)] == "top_genre:Drama"


def test_a_candidate_of_an_unknown_user_raises(rank):
    with pytest.raises(RecsysError, match=r"users \[99\]"):
        rank(candidates([(1, 10, ["a"]), (99, 10, ["a"])]))


def test_a_candidate_of_an_unknown_item_raises(rank):
    with pytest.raises(RecsysError, match=r"items \[77\]"):
        rank(candidates([(1, 10, ["a"]), (1, 77, ["a"])]))


def test_prediction_applies_the_models_output_transform(spark):
    from pyspark.sql import functions as F

    df = spark.createDataFrame(pd.DataFrame({"score": [-1.0, 0.0, 0.5]}))
    linear = df.select(prediction(F.col("score"), (2.25, 2.75, False)).alias("p")).toPandas()["p"]
    assert linear.tolist() == [0.5, 2.75, 3.875]  # ratings 0.5..5: (s + 1) / 2 * 4.5 + 0.5
    prob = df.select(prediction(F.col("score"), (4.0, -1.0, True)).alias("p")).toPandas()["p"]
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-(4.0 * np.array([-1.0, 0.0, 0.5]) - 1.0))))


# --- the new arrivals ------------------------------------------------------------------------------


def test_new_arrivals_are_the_items_without_interactions_newest_first_at_most_limit():
    features = pd.DataFrame(
        {
            C.ITEM_ID: [1, 2, 3, 4, 5, 6, 7],
            C.YEAR: [2001.0, 2020.0, 2020.0, 1999.0, 2024.0, 2010.0, 2022.0],
            C.RATING_COUNT: [0, 0, 5, 0, 1, 0, 0],
        }
    )
    # 3 and 5 have interactions; 2024 is taken; same year (2020): higher id first
    out = new_arrivals(features, limit=10)
    assert out.tolist() == [7, 2, 6, 1, 4] and out.dtype == np.int64
    assert new_arrivals(features, limit=3).tolist() == [7, 2, 6]
    assert new_arrivals(features, limit=0).tolist() == []
    assert new_arrivals(features).tolist() == [7, 2, 6, 1, 4]  # the default limit is large
    rated = features.assign(**{C.RATING_COUNT: 1})
    assert new_arrivals(rated).tolist() == []


def test_best_new_gives_each_rows_top_k_arrivals_by_dot_product(monkeypatch):
    arrivals = np.array([30, 31, 32, 33])
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7], [-1.0, -1.0]])
    users = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.5], [-1.0, 0.0], [0.0, -2.0]])
    # scores of 30, 31, 32, 33: row 0: 1, 0, .7, -1; row 1: 0, 1, .7, -1; row 2: 1, .5, 1.05, -1.5;
    # row 3: -1, 0, -.7, 1; row 4: 0, -2, -1.4, 2
    best_two = [{30, 32}, {31, 32}, {32, 30}, {33, 31}, {33, 30}]
    monkeypatch.setattr(ranking, "NEW_SCORE_USERS", 2)  # users scored in blocks of 2, 2 and 1
    rows, ids = best_new(users, arrivals, vectors, per_user=2)
    assert rows.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert [set(ids[rows == r].tolist()) for r in range(len(users))] == best_two
    rows, ids = best_new(users, arrivals, vectors, per_user=1)  # the single best of each row
    assert rows.tolist() == [0, 1, 2, 3, 4] and ids.tolist() == [30, 31, 32, 33, 33]


def test_best_new_with_more_wanted_than_there_are_arrivals_gives_them_all_and_none_gives_nothing():
    arrivals = np.array([30, 31])
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]])
    users = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    rows, ids = best_new(users, arrivals, vectors, per_user=5)
    assert rows.tolist() == [0, 0, 1, 1, 2, 2]
    assert [sorted(ids[rows == r].tolist()) for r in range(3)] == [[30, 31]] * 3
    for empty in (
        best_new(users, arrivals, vectors, per_user=0),
        best_new(users, arrivals[:0], vectors[:0], per_user=3),
        best_new(users[:0], arrivals, vectors, per_user=3),
    ):
        assert [a.tolist() for a in empty] == [[], []]


# the catalogue with three arrivals: 22 (2, 0) beats every candidate of user 1 (1, 0), 20 (0, 3)
# every candidate of user 2 (0, 1); 21 (0, .5) scores .5 for user 2 and 0 for user 1
ARRIVAL_IDS = np.r_[ITEM_IDS, 22, 21, 20]
ARRIVAL_EMB = np.r_[ITEM_EMB, [[2.0, 0.0], [0.0, 0.5], [0.0, 3.0]]]


@pytest.fixture(scope="module")
def rank_new(spark):
    schema = "user_id long, item_id array<long>, reasons array<array<string>>"

    def run(arrivals, new_items, top_n=10, cands=CANDIDATES):
        frame = spark.createDataFrame(cands, schema)
        out = rank_candidates(
            frame,
            USER_IDS,
            USER_EMB,
            ARRIVAL_IDS,
            ARRIVAL_EMB,
            top_n,
            None if arrivals is None else np.asarray(arrivals, dtype=np.int64),
            new_items,
        ).toPandas()
        return out.sort_values(["user_id", "rank"]).reset_index(drop=True)

    return run


def test_the_best_arrival_joins_the_candidates_with_reason_new_and_ranks_by_its_score(rank_new):
    out = rank_new([22, 21, 20], new_items=1)
    user1, user2 = out[out.user_id == 1], out[out.user_id == 2]
    # user 1: 22 (score 2) above its candidates 10, 11, 13, 12, 14
    assert user1.item_id.tolist() == [22, 10, 11, 13, 12, 14]
    assert user1.score.tolist() == [2.0, 1.0, 0.5, 0.5, 0.0, -1.0]
    assert user1.reason.tolist()[:2] == ["new", "top_country:DE"]
    # user 2: 20 (score 3) above 12 and 10; only its best arrival, not 21
    assert user2.item_id.tolist() == [20, 12, 10]
    assert user2.reason.tolist() == [
        "new",
        "top_genre:Drama",
        "top_country:DE; top_genre:Comedy; popular_fill:1",
    ]
    assert user2["rank"].tolist() == [1, 2, 3]
    # top_n cuts after the arrivals joined: the best of everything
    top1 = rank_new([22, 21, 20], new_items=1, top_n=1)
    assert top1.item_id.tolist() == [22, 20] and top1.reason.tolist() == ["new", "new"]


def test_new_items_is_how_many_arrivals_each_user_gets(rank_new):
    out = rank_new([22, 21, 20], new_items=2)
    # user 1: 22 (2) and then 20 or 21 (both 0); user 2: 20 (3) and 21 (.5)
    new = out[out.reason == "new"].groupby("user_id")["item_id"].apply(set).to_dict()
    assert len(new[1]) == 2 and 22 in new[1] and new[1] <= {22, 21, 20}
    assert new[2] == {20, 21}
    user2 = out[out.user_id == 2]
    assert user2.item_id.tolist() == [20, 12, 21, 10] and user2.score.tolist() == [
        3.0,
        1.0,
        0.5,
        0.0,
    ]


def test_an_arrival_already_among_the_candidates_keeps_its_reasons_adds_new_and_is_not_repeated(
    rank_new,
):
    # 10 is an arrival (score 1 for user 1, its best) and already a candidate of both users
    out = rank_new([10, 21], new_items=1)
    user1, user2 = out[out.user_id == 1], out[out.user_id == 2]
    assert user1.item_id.tolist() == [10, 11, 13, 12, 14]  # as without arrivals
    assert user1[user1.item_id == 10].reason.tolist() == ["top_country:DE; new"]
    # user 2's best arrival is 21 (.5 above 10's 0): it joins, 10 stays once with its reasons
    assert user2.item_id.tolist() == [12, 21, 10]
    assert user2.reason.tolist() == [
        "top_genre:Drama",
        "new",
        "top_country:DE; top_genre:Comedy; popular_fill:1; new",
    ]
    assert not out.duplicated(["user_id", "item_id"]).any()
    # 11 is the best arrival of both users but a candidate of user 1 only: new for user 2 alone
    out = rank_new([11, 14], new_items=1).set_index(["user_id", "item_id"])["reason"]
    assert out[(1, 11)] == "similar_to:10; new" and out[(2, 11)] == "new"
    assert out.index.tolist().count((1, 11)) == 1 and (2, 14) not in out.index


def test_without_new_items_or_arrivals_the_ranking_is_exactly_as_before(rank_new, rank):
    # the catalogue holds the arrivals in every case; the ranking is that of the old catalogue
    before = rank(top_n=3)
    for arrivals, new_items in (([22, 21, 20], 0), (None, 0), (None, 5), ([], 3)):
        pd.testing.assert_frame_equal(rank_new(arrivals, new_items, top_n=3), before)


def test_an_arrival_without_an_embedding_raises(rank_new):
    with pytest.raises(RecsysError, match=r"new arrivals without embeddings: \[77\]"):
        rank_new([22, 77], new_items=1)
