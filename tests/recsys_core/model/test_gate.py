"""The nightly model gate: the held-out slice (Spark), the bless decision and the blessed registry."""

import numpy as np
import pandas as pd
import pytest

from recsys_core import columns as C
from recsys_core.evaluation.protocol import temporal_split
from recsys_core.features.holdout import in_slice, split_holdout, training_popularity
from recsys_core.model.gate import decide
from recsys_core.model.registry import read_blessed, write_blessed


def interactions(n_users=200, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        n = int(rng.integers(1, 15))
        items = rng.choice(500, n, replace=False)
        ts = rng.integers(0, 5, n)  # many timestamp ties: the item_id tie-break matters
        rows += [
            (u, int(i), float(rng.integers(1, 6)), int(t)) for i, t in zip(items, ts, strict=True)
        ]
    return pd.DataFrame(rows, columns=[C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP])


@pytest.mark.spark
def test_holdout_is_the_protocol_split_of_a_stable_share_of_users(spark):
    df = interactions()
    train, held = (x.toPandas() for x in split_holdout(spark.createDataFrame(df), 0.3))
    chosen = set(held[C.USER_ID])
    assert 0.15 * 200 < len(chosen) < 0.45 * 200
    # the two parts are exactly the slice users' rows, split without overlap (a slice user with one
    # interaction has nothing held out)
    in_slice_rows = spark.createDataFrame(df).where(in_slice(0.3)).toPandas()
    assert set(train[C.USER_ID]) == set(in_slice_rows[C.USER_ID]) >= chosen
    assert len(train) + len(held) == len(in_slice_rows)
    assert not set(map(tuple, train[[C.USER_ID, C.ITEM_ID]].values)) & set(
        map(tuple, held[[C.USER_ID, C.ITEM_ID]].values)
    )
    # for the chosen users, exactly the offline protocol's test rows (users keep one training row)
    protocol = temporal_split(df[df[C.USER_ID].isin(chosen)]).test
    key = [C.USER_ID, C.ITEM_ID]
    assert sorted(map(tuple, held[key].values)) == sorted(map(tuple, protocol[key].values))
    singles = df.groupby(C.USER_ID).size()
    assert not chosen & set(singles[singles == 1].index)
    again = split_holdout(spark.createDataFrame(df.sample(frac=1, random_state=1)), 0.3)[
        1
    ].toPandas()
    assert set(again[C.USER_ID]) == chosen  # the same users every night, whatever the row order
    assert split_holdout(spark.createDataFrame(df), 0.0)[1].count() == 0


@pytest.mark.spark
def test_held_out_users_features_equal_those_of_all_training_rows(spark):
    """build_features computes the slice users' features from their own training rows and the items'
    popularity without the held-out rows: the same features as from every row outside the held-out
    ones. Only a fallback differs: a user none of whose items has a release year gets the slice's mean
    year (every 7th item here has none)."""
    from recsys_core.features.build import user_features

    df = interactions()
    inter = spark.createDataFrame(df)
    items = spark.createDataFrame(
        [(i, 1980 + i % 40 if i % 7 else None, ["a", "b"][: 1 + i % 2]) for i in range(500)],
        "item_id long, year int, genres array<string>",
    )
    users = spark.createDataFrame([(u, 20 + u % 50) for u in range(200)], "user_id long, age int")
    slice_train, held = split_holdout(inter, 0.3)
    held_users = users.join(held.select(C.USER_ID).distinct(), C.USER_ID, "left_semi")
    got = user_features(
        held_users, slice_train, items, ["a", "b"], training_popularity(inter, held)
    )
    everything_else = inter.join(held, [C.USER_ID, C.ITEM_ID], "left_anti")
    want = user_features(held_users, everything_else, items, ["a", "b"])
    got, want = (x.orderBy(C.USER_ID).toPandas() for x in (got, want))
    assert len(got) == held.select(C.USER_ID).distinct().count() > 20
    train_rows = slice_train.toPandas()
    dated = set(train_rows.loc[train_rows[C.ITEM_ID] % 7 != 0, C.USER_ID])
    undated = ~got[C.USER_ID].isin(dated)
    assert 0 < undated.sum() < len(got)  # the fallback is exercised, and the mean elsewhere
    got.loc[undated, C.TASTE_YEAR] = want.loc[undated, C.TASTE_YEAR]
    pd.testing.assert_frame_equal(got, want, check_exact=False, rtol=1e-12)
    assert got[C.TASTE_POPULARITY].gt(0).all()


def test_decide_blesses_within_the_margin_and_rejects_beyond_it():
    old = {"ndcg@10": 0.10}
    assert decide({"ndcg@10": 0.095}, old, 0.01)[0] is True
    assert decide({"ndcg@10": 0.12}, old, 0.0)[0] is True
    bless, reason = decide({"ndcg@10": 0.085}, old, 0.01)
    assert bless is False and "0.0850" in reason and "0.1000" in reason and "margin 0.01" in reason
    assert decide({"ndcg@10": 0.0}, None, 0.01)[0] is True  # nothing blessed yet


@pytest.mark.parametrize(
    "candidate, blessed, missing",
    [
        (None, {"ndcg@10": 0.1}, "no held-out user has a relevant item today"),
        ({"ndcg@10": 0.1}, None, "the blessed model could not be evaluated"),
    ],
)
def test_a_gate_that_cannot_compare_keeps_the_blessed_model_and_says_so(
    candidate, blessed, missing
):
    bless, reason = decide(candidate, blessed, 0.01, has_blessed=True)
    assert bless is False
    assert missing in reason and "the blessed model keeps serving" in reason
    assert "evaluation.bless_unchecked" in reason  # and how to choose otherwise
    bless, reason = decide(candidate, blessed, 0.01, has_blessed=True, bless_unchecked=True)
    assert bless is True and "blessed unchecked" in reason


def test_with_no_blessed_model_the_new_one_is_blessed_even_unmeasured():
    bless, reason = decide(None, None, 0.01, has_blessed=False)
    assert bless is True and "no model is blessed yet" in reason


def test_blessed_registry_round_trip_and_bad_json(tmp_path):
    assert read_blessed(tmp_path) is None
    write_blessed(tmp_path, {"version": "m1", "path": "/x"})
    write_blessed(tmp_path, {"version": "m2", "path": "/y"})
    assert read_blessed(tmp_path)["version"] == "m2"
    assert [p.name for p in tmp_path.iterdir()] == ["blessed.json"]  # no temporary file left behind
    (tmp_path / "blessed.json").write_text("{")
    from recsys_core.errors import RecsysError

    with pytest.raises(RecsysError, match="blessed-model registry .* is not valid JSON"):
        read_blessed(tmp_path)
