"""A small, fixed search over the softmax towers' settings that matter, judged on a validation split
inside the training interactions it is given (never on a test set).

The search is relative to the configured model, so it runs the same on any data: each setting is moved
one at a time by a fixed factor (epochs x1/2 and x2, the history's half-life x1/3 and x3, the
embedding size x2, the starting temperature x1/2 and x2, the logQ correction's weight x1.5 and x2);
then the winners of every setting that
beat the configured model are combined and tried once more. Each trial is the mean NDCG@10 of
`model.tune_seeds` trainings (seeds model.seed, model.seed + 1, ...), because one training's figure
moves by a few percent with the seed alone; a variant replaces the configured model only when it
beats it by more than MIN_GAIN. Validation: the offline protocol's split (each user's last 20% by
time) of the interactions given, relevant = rated >= 4, training items excluded, the whole
catalogue scored.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import pandas as pd

from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.evaluation.protocol import K, temporal_split
from recsys_core.model.gate import Slice, slice_metrics
from recsys_core.model.softmax_training import fit_softmax_towers

log = logging.getLogger(__name__)
METRIC = f"ndcg@{K}"
CONFIGURED = "configured"
# relative gain over the configured model below which a variant is not taken: about the spread of a
# two-seed mean on MovieLens-sized validation splits (docs/model.md), so noise alone rarely wins
MIN_GAIN = 0.02


def _resized(cfg: ModelConfig, dim: int) -> ModelConfig:
    return dataclasses.replace(
        cfg, user_layers=(*cfg.user_layers[:-1], dim), item_layers=(*cfg.item_layers[:-1], dim)
    )


def variants(cfg: ModelConfig) -> dict[str, dict]:
    """The one-at-a-time moves from `cfg`: name -> the ModelConfig fields it changes."""
    dim = cfg.user_layers[-1]
    moves: dict[str, dict] = {}
    for epochs in sorted({max(1, cfg.epochs // 2), cfg.epochs * 2} - {cfg.epochs}):
        moves[f"epochs={epochs}"] = {"epochs": epochs}
    for factor in (1 / 3, 3):
        half = cfg.history_half_life * factor  # not rounded: a small half-life must stay above 0
        moves[f"history_half_life={half:.4g}"] = {"history_half_life": half}
    moves[f"embedding_size={2 * dim}"] = {"embedding_size": 2 * dim}
    for factor in (0.5, 2):
        start = cfg.initial_temperature * factor
        moves[f"initial_temperature={start:.4g}"] = {"initial_temperature": start}
    for factor in (1.5, 2):
        weight = cfg.logq_weight * factor
        if weight != cfg.logq_weight:  # a weight of 0 has nothing to scale
            moves[f"logq_weight={weight:.4g}"] = {"logq_weight": weight}
    return moves


def apply(cfg: ModelConfig, changes: dict) -> ModelConfig:
    """`cfg` with the changes of a variant; embedding_size sets the last width of both towers."""
    changes = dict(changes)
    dim = changes.pop("embedding_size", None)
    out = dataclasses.replace(cfg, **changes)
    return _resized(out, dim) if dim else out


def validation_ndcg(
    users: pd.DataFrame, items: pd.DataFrame, interactions: pd.DataFrame, cfg: ModelConfig
) -> dict:
    """Train on the first 80% of each user's interactions, score the last 20%: the protocol's metrics."""
    split = temporal_split(interactions)
    relevant = split.relevant
    if relevant.empty:
        raise RecsysError("tuning: no user has a relevant (rated >= 4) validation interaction")
    model = fit_softmax_towers(users, items, split.train, cfg)
    # scored as the model gate scores its slice: the whole catalogue, training items excluded
    metrics = slice_metrics(model, Slice(relevant, users, items, split.train))
    if metrics is None:  # cannot happen: relevant is not empty
        raise RecsysError("tuning: the validation split has no relevant interaction")
    return metrics


def tune(
    users: pd.DataFrame, items: pd.DataFrame, interactions: pd.DataFrame, cfg: ModelConfig
) -> tuple[ModelConfig, dict]:
    """(the winning ModelConfig, the search's record: every variant's NDCG@10 and seconds, the winner
    and its gain over the configured model)."""
    start = time.perf_counter()
    tried: dict[str, dict] = {}
    exact: dict[str, float] = {}  # the unrounded scores every choice is made on

    def trial(name: str, changes: dict) -> float:
        t0 = time.perf_counter()
        variant = apply(cfg, changes)
        runs = [
            validation_ndcg(
                users, items, interactions, dataclasses.replace(variant, seed=cfg.seed + i)
            )[METRIC]
            for i in range(cfg.tune_seeds)
        ]
        score = exact[name] = float(sum(runs) / len(runs))
        tried[name] = {
            "changes": changes,
            METRIC: round(score, 5),
            "per_seed": [round(r, 5) for r in runs],
            "seconds": round(time.perf_counter() - t0, 2),
        }
        log.info("tuning %s: %s %.4f", name, METRIC, score)
        return score

    base = trial(CONFIGURED, {})
    bar = base * (1 + MIN_GAIN)
    moves = variants(cfg)
    scores = {name: trial(name, changes) for name, changes in moves.items()}
    # per setting, the better of its moves when it beat the configured model by the margin
    best_per_setting: dict[str, tuple[float, dict]] = {}
    for name, changes in moves.items():
        setting = name.split("=")[0]
        if scores[name] > max(bar, best_per_setting.get(setting, (bar, {}))[0]):
            best_per_setting[setting] = (scores[name], changes)
    if len(best_per_setting) > 1:
        combined: dict = {}
        for _, changes in best_per_setting.values():
            combined.update(changes)
        trial("combined", combined)
    eligible = [n for n in tried if n == CONFIGURED or exact[n] > bar]
    winner = max(eligible, key=lambda n: (exact[n], n == CONFIGURED))
    record = {
        "metric": METRIC,
        "validation": "each user's last 20% of the training interactions",
        "tried": tried,
        "chosen": winner,
        "chosen_changes": tried[winner]["changes"],
        "configured_score": tried[CONFIGURED][METRIC],
        "chosen_score": tried[winner][METRIC],
        "gain": round(tried[winner][METRIC] / max(tried[CONFIGURED][METRIC], 1e-12) - 1, 4),
        "min_gain": MIN_GAIN,
        "seeds_per_trial": cfg.tune_seeds,
        "seconds": round(time.perf_counter() - start, 1),
    }
    return apply(cfg, tried[winner]["changes"]), record
