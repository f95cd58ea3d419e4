"""Tests of ranking candidates by v_u . v_m in Spark (SEED.md "Ranking")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.candidates.ranking import prediction, rank_candidates, top_by_score
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
