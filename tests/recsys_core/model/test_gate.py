"""The nightly model gate: the held-out slice (Spark), the bless decision and the blessed registry."""

import numpy as np
import pandas as pd
import pytest

from recsys_core import columns as C
from recsys_core.evaluation.protocol import temporal_split
from recsys_core.features.holdout import split_holdout
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
    assert len(train) + len(held) == len(df)
    assert not set(map(tuple, train[[C.USER_ID, C.ITEM_ID]].values)) & set(
        map(tuple, held[[C.USER_ID, C.ITEM_ID]].values)
    )
    chosen = set(held[C.USER_ID])
    assert 0.15 * 200 < len(chosen) < 0.45 * 200
    # for the chosen users, exactly the offline protocol's test rows (users keep one training row)
    protocol = temporal_split(df[df[C.USER_ID].isin(chosen)]).test
    key = [C.USER_ID, C.ITEM_ID]
    assert sorted(map(tuple, held[key].values)) == sorted(map(tuple, protocol[key].values))
    assert set(train[C.USER_ID]) >= chosen  # nobody loses all their training rows
    singles = df.groupby(C.USER_ID).size()
    assert not chosen & set(singles[singles == 1].index)
    again = split_holdout(spark.createDataFrame(df.sample(frac=1, random_state=1)), 0.3)[
        1
    ].toPandas()
    assert set(again[C.USER_ID]) == chosen  # the same users every night, whatever the row order
    assert split_holdout(spark.createDataFrame(df), 0.0)[1].count() == 0


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
