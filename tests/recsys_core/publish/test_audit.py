"""Tests of the invariants recommendations must hold before they are published."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.errors import AuditError
from recsys_core.publish.audit import audit_recommendations, expected_counts

ITEM_IDS = np.array([1, 2, 3, 4, 5, 6])
USER_IDS = np.array([1, 2])
TOP_N = 3
INTERACTIONS = pd.DataFrame({"user_id": [1, 2, 2], "item_id": [1, 2, 2]})


def valid_recs() -> pd.DataFrame:
    rows = [
        (1, 1, 2, 0.9, 4.8, "top_genre:Drama"),
        (1, 2, 3, 0.5, 3.0, "similar_to:1"),
        (1, 3, 4, 0.1, 2.2, "top_global:x"),
        (2, 1, 1, 0.8, 4.6, "top_country:DE"),
        (2, 2, 3, 0.4, 2.8, "similar_to:2; top_genre:Drama"),
        (2, 3, 4, -0.2, 1.6, "popular_fill:1"),
    ]
    recs = pd.DataFrame(
        rows, columns=["user_id", "rank", "item_id", "score", "predicted_rating", "reason"]
    )
    recs["model_version"] = "v1"
    return recs


def audit(
    recs: pd.DataFrame, user_ids=USER_IDS, interactions=INTERACTIONS, item_ids=ITEM_IDS, top_n=TOP_N
):
    audit_recommendations(recs, user_ids, interactions, item_ids, top_n)


def problems_of(recs: pd.DataFrame, **kwargs) -> list[str]:
    with pytest.raises(AuditError) as err:
        audit(recs, **kwargs)
    return str(err.value).split(": ", 1)[1].split("; ")


def test_a_valid_set_passes():
    audit(valid_recs())  # no exception


def test_duplicate_rank_is_reported():
    recs = valid_recs()
    recs.loc[1, "rank"] = 1  # user 1: ranks 1, 1, 3
    assert "duplicate (user_id, rank) rows" in problems_of(recs)


def test_an_item_recommended_twice_is_reported():
    recs = valid_recs()
    recs.loc[2, "item_id"] = 3  # user 1: items 2, 3, 3
    assert problems_of(recs) == ["an item recommended twice to the same user"]


def test_nan_score_is_reported():
    recs = valid_recs()
    recs.loc[4, "score"] = np.nan
    assert problems_of(recs) == ["non-finite scores"]


def test_nan_predicted_rating_is_reported():
    recs = valid_recs()
    recs.loc[0, "predicted_rating"] = np.inf
    assert problems_of(recs) == ["non-finite predicted ratings"]


def test_item_not_in_catalogue_is_reported():
    recs = valid_recs()
    recs.loc[2, "item_id"] = 99
    assert problems_of(recs) == ["1 recommended item(s) not in the catalogue"]


def test_already_watched_item_is_reported():
    recs = valid_recs()
    recs.loc[2, "item_id"] = 1  # user 1 interacted with item 1
    assert problems_of(recs) == ["1 recommendation(s) of items the user already interacted with"]


@pytest.mark.parametrize("reason", ["", None])
def test_missing_reason_is_reported(reason):
    recs = valid_recs()
    recs.loc[3, "reason"] = reason
    assert problems_of(recs) == ["recommendations without a reason"]


def test_a_user_short_of_rows_is_reported():
    recs = valid_recs().drop(index=5)  # user 2 keeps ranks 1, 2
    (problem,) = problems_of(recs)
    assert problem == "1 user(s) with the wrong number of rows, e.g. user 2 has 2 instead of 3"


def test_a_user_without_any_rows_is_reported():
    (problem,) = problems_of(valid_recs(), user_ids=np.array([1, 2, 3]))
    assert "user 3 has 0 instead of 3" in problem


def test_ranks_with_a_gap_are_reported():
    recs = valid_recs()
    recs.loc[2, "rank"] = 4  # user 1: ranks 1, 2, 4
    assert problems_of(recs) == ["ranks are not contiguous 1..n per user"]


def test_ranks_starting_at_zero_are_reported():
    recs = valid_recs()
    recs.loc[[0, 1, 2], "rank"] = [0, 1, 3]
    assert "ranks are not contiguous 1..n per user" in problems_of(recs)


def test_two_model_versions_are_reported():
    recs = valid_recs()
    recs.loc[5, "model_version"] = "v2"
    assert problems_of(recs) == ["more than one model version in one publish"]


def test_several_broken_invariants_are_all_listed():
    recs = valid_recs()
    recs.loc[4, "score"] = np.nan
    recs.loc[5, "model_version"] = "v2"
    assert problems_of(recs) == ["non-finite scores", "more than one model version in one publish"]


def test_expected_counts_is_min_of_top_n_and_unseen_items():
    items = np.array([10, 11, 12, 13, 14])
    interactions = pd.DataFrame(
        {
            # user 1 saw 4 catalogue items (10 twice) and one item outside the catalogue
            "user_id": [1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3],
            "item_id": [10, 10, 11, 12, 13, 999, 10, 11, 12, 13, 14],
        }
    )
    counts = expected_counts(np.array([1, 2, 3]), interactions, items, top_n=3)
    assert counts.to_dict() == {1: 1, 2: 3, 3: 0}
    # the audit accepts exactly those counts ...
    recs = pd.DataFrame(
        {
            "user_id": [1, 2, 2, 2],
            "rank": [1, 1, 2, 3],
            "item_id": [14, 10, 11, 12],
            "score": 0.5,
            "predicted_rating": 3.0,
            "reason": "top_global:x",
            "model_version": "v1",
        }
    )
    audit(recs, user_ids=np.array([1, 2, 3]), interactions=interactions, item_ids=items, top_n=3)
    # ... and rejects a user who has seen almost everything but gets fewer than is left
    with pytest.raises(AuditError, match="user 1 has 0 instead of 1"):
        audit(
            recs.iloc[1:],
            user_ids=np.array([1, 2, 3]),
            interactions=interactions,
            item_ids=items,
            top_n=3,
        )


def test_parquet_files_are_audited_in_duckdb_within_a_memory_limit(tmp_path):
    """The publish job's inputs: Arrow datasets over Parquet files, audited in DuckDB with a memory limit
    and a spill folder; the verdicts are those of the same rows given as pandas frames."""
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    def dataset(frame: pd.DataFrame, name: str):
        (tmp_path / name).mkdir()
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(table.slice(0, 2), tmp_path / name / "a.parquet")
        pq.write_table(table.slice(2), tmp_path / name / "b.parquet")
        return pads.dataset(tmp_path / name, format="parquet")

    limits = {"memory_limit": "64MB", "spill_dir": tmp_path / "spill"}
    seen = dataset(INTERACTIONS, "interactions")
    assert audit_recommendations(valid_recs(), USER_IDS, seen, ITEM_IDS, TOP_N, **limits) == "v1"
    recs = valid_recs()
    recs.loc[2, "item_id"] = 1  # user 1 interacted with item 1
    with pytest.raises(AuditError, match="1 recommendation.s. of items the user already"):
        audit_recommendations(dataset(recs, "recs"), USER_IDS, seen, ITEM_IDS, TOP_N, **limits)
