"""Invariants recommendations must hold before they may be published (the "audit" of write-audit-publish)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys_core import columns as C
from recsys_core.errors import AuditError


def expected_counts(
    user_ids: np.ndarray, interactions: pd.DataFrame, item_ids: np.ndarray, top_n: int
) -> pd.Series:
    """Rows each user must get: top_n, or every unseen catalogue item when fewer remain."""
    seen = interactions[interactions[C.ITEM_ID].isin(item_ids)].drop_duplicates(
        [C.USER_ID, C.ITEM_ID]
    )
    seen_per_user = seen.groupby(C.USER_ID).size().reindex(user_ids, fill_value=0)
    return np.minimum(top_n, len(np.unique(item_ids)) - seen_per_user)


def audit_recommendations(
    recs: pd.DataFrame,
    user_ids: np.ndarray,
    interactions: pd.DataFrame,
    item_ids: np.ndarray,
    top_n: int,
) -> None:
    """Raise AuditError listing every broken invariant; return quietly when all hold."""
    problems = []
    if recs.duplicated([C.USER_ID, C.RANK]).any():
        problems.append("duplicate (user_id, rank) rows")
    if recs.duplicated([C.USER_ID, C.ITEM_ID]).any():
        problems.append("an item recommended twice to the same user")
    if not np.isfinite(recs[C.SCORE].to_numpy(dtype=float)).all():
        problems.append("non-finite scores")
    if not np.isfinite(recs[C.PREDICTED_RATING].to_numpy(dtype=float)).all():
        problems.append("non-finite predicted ratings")
    unknown = ~recs[C.ITEM_ID].isin(item_ids)
    if unknown.any():
        problems.append(f"{int(unknown.sum())} recommended item(s) not in the catalogue")
    watched = recs.merge(
        interactions[[C.USER_ID, C.ITEM_ID]].drop_duplicates(), on=[C.USER_ID, C.ITEM_ID]
    )
    if len(watched):
        problems.append(
            f"{len(watched)} recommendation(s) of items the user already interacted with"
        )
    if (recs[C.REASON].fillna("") == "").any():
        problems.append("recommendations without a reason")
    counts = recs.groupby(C.USER_ID).size().reindex(user_ids, fill_value=0)
    expected = expected_counts(user_ids, interactions, item_ids, top_n)
    short = counts[counts != expected]
    if len(short):
        problems.append(
            f"{len(short)} user(s) with the wrong number of rows, e.g. user {short.index[0]} has "
            f"{short.iloc[0]} instead of {expected.loc[short.index[0]]}"
        )
    max_rank = recs.groupby(C.USER_ID)[C.RANK].agg(["max", "size"])
    if (max_rank["max"] != max_rank["size"]).any() or (recs[C.RANK] < 1).any():
        problems.append("ranks are not contiguous 1..n per user")
    if recs[C.MODEL_VERSION].nunique() > 1:
        problems.append("more than one model version in one publish")
    if problems:
        raise AuditError(
            "recommendations failed the audit, nothing was published: " + "; ".join(problems)
        )
