"""What warm-started nightly training costs in quality: a simulated week of nights against a full
retrain on the same data.

The training interactions of a split are cut in time: everything before the newest `nights` x
`night_share` of them is the base, on which one full training runs; then each night adds its share
of the interactions and the model of the night before is warm-started on them (as train_towers does
between full retrains: the new interactions plus a replay of the older ones). A full retrain on all
of the training interactions is the reference. Both are scored as the model gate scores: the whole
catalogue ranked for the split's held-out users, their training items excluded, NDCG@10. The
features are those of the whole training part for every night (both arms see the same ones).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from recsys_core import columns as C
from recsys_core.config import ModelConfig
from recsys_core.evaluation.protocol import Split
from recsys_core.model.gate import METRIC, Slice, slice_metrics
from recsys_core.model.softmax_training import fit_softmax_towers
from recsys_core.model.warm_start import WarmStart

NIGHTS = 7  # a week of nights between two full retrains (model.full_retrain_days' default)
NIGHT_SHARE = 0.01  # of the training interactions, each night's new ones


def night_cuts(train: pd.DataFrame, nights: int, night_share: float) -> list[int]:
    """The last timestamp of the base, then of each night (nights + 1 cuts, the last the newest)."""
    times = np.sort(train[C.TIMESTAMP].to_numpy())
    ends = [len(times) - int(round(night_share * len(times) * (nights - k))) for k in range(nights)]
    return [int(times[max(e, 1) - 1]) for e in ends] + [int(times[-1])]


def simulated_week(
    user_features: pd.DataFrame,
    item_features: pd.DataFrame,
    split: Split,
    cfg: ModelConfig,
    nights: int = NIGHTS,
    night_share: float = NIGHT_SHARE,
) -> dict:
    """NDCG@10 of the model warm-started night after night and of a full retrain, their ratio, and
    each night's training (new rows, seconds)."""
    cuts = night_cuts(split.train, nights, night_share)
    times = split.train[C.TIMESTAMP].to_numpy()
    judged = Slice(split.test, user_features, item_features, split.train)

    def fit(until: int, warm: WarmStart | None):
        start = time.perf_counter()
        model = fit_softmax_towers(
            user_features, item_features, split.train[times <= until], cfg, warm
        )
        return model, round(time.perf_counter() - start, 2)

    model, seconds = fit(cuts[0], None)
    log = [
        {
            "night": 0,
            "kind": "full",
            "new_rows": model.meta["training"]["new_rows"],
            "seconds": seconds,
        }
    ]
    for night, until in enumerate(cuts[1:], start=1):
        since = model.meta["training"]["trained_until"]
        model, seconds = fit(until, WarmStart(model, f"night-{night - 1}", since, "night-0"))
        training = model.meta["training"]
        log.append(
            {
                "night": night,
                "kind": training["kind"],
                "new_rows": training["new_rows"],
                "seconds": seconds,
            }
        )
    full, full_seconds = fit(cuts[-1], None)
    warm_metrics, full_metrics = slice_metrics(model, judged), slice_metrics(full, judged)
    if warm_metrics is None or full_metrics is None:
        raise ValueError("the split has no held-out user with a relevant item")
    return {
        "metric": METRIC,
        "nights": nights,
        "night_share": night_share,
        "replay_share": cfg.replay_share,
        "warm": warm_metrics[METRIC],
        "full": full_metrics[METRIC],
        "ratio": warm_metrics[METRIC] / max(full_metrics[METRIC], 1e-12),
        "warm_seconds_per_night": float(np.mean([n["seconds"] for n in log[1:]])),
        "full_seconds": full_seconds,
        "per_night": log,
    }
