"""The simulated week of warm-started nights against a full retrain, on small synthetic data (the
figures on ml-latest-small are in docs/model.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys_core import columns as C
from recsys_core.evaluation.protocol import temporal_split
from recsys_core.evaluation.warm_start import night_cuts, simulated_week
from tests.recsys_core.model.test_softmax_towers import SMALL, synthetic


def test_night_cuts_leave_each_night_its_share_of_the_newest_interactions():
    train = pd.DataFrame({C.TIMESTAMP: np.arange(1000)})
    assert night_cuts(train, 3, 0.05) == [849, 899, 949, 999]


def test_a_week_warm_starts_every_night_from_the_one_before_and_scores_both_arms():
    users, items, inter, _ = synthetic(content=1.0)
    # spread every user's interactions over time, so that each night brings new ones
    inter = inter.assign(**{C.TIMESTAMP: inter[C.TIMESTAMP] * 7 + inter[C.USER_ID]})
    split = temporal_split(inter)
    cfg = dataclasses.replace(SMALL, epochs=5)
    week = simulated_week(users, items, split, cfg, nights=3, night_share=0.05)
    nights = week["per_night"]
    assert [n["kind"] for n in nights] == ["full", "warm", "warm", "warm"]
    assert all(n["new_rows"] > 0 for n in nights[1:])
    assert sum(n["new_rows"] for n in nights[1:]) == pytest.approx(0.15 * len(split.train), abs=3)
    assert week["ratio"] == pytest.approx(week["warm"] / week["full"])
    # the groups are easy to learn: both arms rank well, the warm one within 15% of the full retrain
    assert week["full"] > 0.3 and week["ratio"] > 0.85, week
