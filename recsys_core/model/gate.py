"""Blessing: a newly trained model serves only if it is not worse than the last blessed one.

Both models rank the whole catalogue for the held-out users (features from their training part,
their training items excluded) and are scored with the offline protocol's NDCG@10. The registry of
the blessed model is one JSON file replaced atomically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys_core import columns as C
from recsys_core.evaluation.protocol import RELEVANT_RATING, K, ranking_metrics, top_k_unseen
from recsys_core.features.names import feature_columns
from recsys_core.model.history import Sequences
from recsys_core.model.two_tower import TwoTowerModel

METRIC = f"ndcg@{K}"


@dataclass(frozen=True)
class Slice:
    """The held-out rows, the held-out users' features (from their training part) and what they had seen."""

    held_out: pd.DataFrame  # user_id, item_id, rating
    user_features: pd.DataFrame
    item_features: pd.DataFrame
    # user_id, item_id, timestamp of the held-out users' training interactions: never recommended,
    # and the recent items the softmax towers' user tower reads
    seen: pd.DataFrame

    @property
    def relevant(self) -> pd.DataFrame:
        return self.held_out[self.held_out[C.RATING] >= RELEVANT_RATING]


def slice_metrics(model: TwoTowerModel, s: Slice) -> dict | None:
    """Ranking metrics of `model` on the slice; None when no held-out user has a relevant item.
    Raises RecsysError when the model cannot read today's features (e.g. the genre list changed)."""
    relevant = s.relevant
    if relevant.empty:
        return None
    users = np.sort(relevant[C.USER_ID].unique())
    feats = s.user_features.set_index(C.USER_ID).loc[users].reset_index()
    recent = None
    if model.vocabulary is not None:
        recent = Sequences.of(s.seen).recent(users, model.vocabulary.history_length)
    u = model.embed_users(feats[feature_columns(list(feats.columns), C.USER_ID)], users, recent)
    v = model.embed_items(
        s.item_features[feature_columns(list(s.item_features.columns), C.ITEM_ID)],
        s.item_features[C.ITEM_ID].to_numpy(),
    )
    pos = pd.Index(users)
    recs = top_k_unseen(
        users,
        s.item_features[C.ITEM_ID].to_numpy(),
        lambda ids: u[pos.get_indexer(ids)] @ v.T,
        s.seen,
    )
    return ranking_metrics(recs, relevant, len(s.item_features))


def decide(
    candidate: dict | None,
    blessed: dict | None,
    margin: float,
    has_blessed: bool | None = None,
    bless_unchecked: bool = False,
) -> tuple[bool, str]:
    """(bless the candidate?, why). Not worse than the blessed model by more than `margin` in NDCG@10.

    `candidate` and `blessed` are the two models' metrics on the slice (None: not measured).
    `has_blessed` says whether a blessed model exists at all (default: whether `blessed` was
    measured). With none, the new model is blessed: something must serve. When one exists but the
    two cannot be compared, the blessed model keeps serving unless `bless_unchecked`, and the reason
    says so: a skipped check is never silent."""
    has_blessed = blessed is not None if has_blessed is None else has_blessed
    if not has_blessed:
        return True, "no model is blessed yet: the new model is blessed"
    missing = (
        "no held-out user has a relevant item today"
        if candidate is None
        else "the blessed model could not be evaluated on today's slice"
        if blessed is None
        else ""
    )
    if missing:
        if bless_unchecked:
            return True, f"{missing}: nothing compared, the new model is blessed unchecked " + (
                "(evaluation.bless_unchecked)"
            )
        return False, (
            f"{missing}: nothing compared, the blessed model keeps serving "
            "(evaluation.bless_unchecked = true would bless the new one)"
        )
    assert candidate is not None and blessed is not None
    new, old = candidate[METRIC], blessed[METRIC]
    if new >= old - margin:
        return True, f"{METRIC} {new:.4f} vs blessed {old:.4f}: within the margin {margin}"
    return False, (
        f"{METRIC} {new:.4f} is worse than the blessed model's {old:.4f} by more than the margin "
        f"{margin}: ranking with the blessed model"
    )
