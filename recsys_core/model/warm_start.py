"""Nightly training that starts from the blessed model instead of from random weights.

A warm start trains the softmax towers on every interaction newer than the blessed model's training
data plus a seeded `model.replay_share` of the older ones (so the towers keep what they knew), from
the blessed model's weights, scalers and temperature. The id vocabularies grow: ids the blessed model
knew keep their learned vectors, new ids start as a fresh model's would. A full retrain runs instead
when there is no blessed model to start from, when the last full retrain of its line is
`model.full_retrain_days` or more days before ds, when the feature columns or the model's settings
changed, and when the settings search runs; the choice and its reason are recorded with the model.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.model.registry import read_blessed
from recsys_core.model.two_tower import TwoTowerModel, Vocabulary

log = logging.getLogger(__name__)
# settings a warm start may change from the blessed model's: how long and on what it trains, not
# what the towers are
FREE_SETTINGS = frozenset(
    {
        "epochs",
        "seed",
        "tune",
        "tune_seeds",
        "full_retrain_days",
        "replay_share",
        "warm_epochs",
        "validation_share",
    }
)
# a stream of the seeded generator of its own: the replay draw never moves with other draws
REPLAY_STREAM = 7


@dataclass(frozen=True)
class WarmStart:
    """Where a warm start begins: the blessed model, the newest timestamp it trained on (later ones are
    new) and its line's last full retrain."""

    model: TwoTowerModel
    version: str
    since: int
    full_retrain_ds: str


@dataclass(frozen=True)
class TrainingPlan:
    """A warm start (`warm` set) or a full retrain, the config to train with, and why."""

    cfg: ModelConfig
    warm: WarmStart | None
    reason: str

    @property
    def kind(self) -> str:
        return "warm" if self.warm else "full"


def _comparable(cfg: ModelConfig) -> dict:
    """The settings that define the towers, as the model's meta.json stores them."""
    d = json.loads(json.dumps({k: getattr(cfg, k) for k in cfg.__dataclass_fields__}))
    return {k: v for k, v in d.items() if k not in FREE_SETTINGS}


def plan_training(
    models_dir: Path,
    ds: str,
    cfg: ModelConfig,
    user_columns: list[str],
    item_columns: list[str],
) -> TrainingPlan:
    """Warm start from the blessed model when it can serve as one, else a full retrain (why, in the
    plan). A tuned blessed model warm-starts with its tuned settings."""

    def full(reason: str) -> TrainingPlan:
        log.info("full retrain: %s", reason)
        return TrainingPlan(cfg, None, reason)

    if cfg.mode != "softmax":
        return full(f"model.mode {cfg.mode} always trains from scratch")
    if cfg.full_retrain_days == 0:
        return full("model.full_retrain_days = 0: every night a full retrain")
    if cfg.tune:
        return full("the settings search runs (model.tune): it trains from scratch")
    entry = read_blessed(models_dir)
    if not entry:
        return full("no blessed model to start from")
    if str(entry.get("ds", "")) >= ds:
        return full(f"the blessed model is of ds {entry.get('ds')}, not before {ds}")
    try:
        model = TwoTowerModel.load(entry["path"])
    except (RecsysError, OSError, ValueError) as exc:
        return full(f"the blessed model {entry.get('version')} does not load: {exc}")
    meta = model.meta
    training = meta.get("training", {})
    if model.vocabulary is None or "trained_until" not in training:
        return full(f"the blessed model {entry['version']} is not a softmax model of this version")
    root = training.get("full_retrain_ds", entry["ds"])
    age = (date.fromisoformat(ds) - date.fromisoformat(root)).days
    if age >= cfg.full_retrain_days:
        return full(f"the last full retrain was on {root}, {age} days before {ds}")
    if (model.user_columns, model.item_columns) != (user_columns, item_columns):
        return full("the feature columns changed since the blessed model")
    from recsys_core.model.tuning import apply

    tuned = apply(cfg, meta.get("tuning", {}).get("chosen_changes", {}))
    mine, theirs = (
        _comparable(tuned),
        {k: v for k, v in meta.get("config", {}).items() if k not in FREE_SETTINGS},
    )
    changed = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
    if changed:
        return full(f"model settings changed since the blessed model: {', '.join(changed)}")
    warm = WarmStart(model, entry["version"], int(training["trained_until"]), root)
    return TrainingPlan(
        tuned, warm, f"warm start from {entry['version']} (last full retrain {root})"
    )


def replay_rows(rows: np.ndarray, timestamps: np.ndarray, warm: WarmStart, cfg: ModelConfig):
    """The positives a warm start trains on: every one newer than the blessed model's data, and a
    seeded `replay_share` of the others. Returns (rows, how many are new)."""
    fresh = timestamps[rows] > warm.since
    # a draw of its own each night (seeded by the parent's data), the same on a rerun: the same older
    # rows replayed night after night would be trained again and again while the rest is not
    draw = np.random.default_rng([cfg.seed, REPLAY_STREAM, warm.since]).random(len(rows))
    keep = fresh | (draw < cfg.replay_share)
    if not keep.any():
        raise RecsysError(
            f"warm start from {warm.version}: no interaction is newer than its data and the replay "
            f"of model.replay_share = {cfg.replay_share} drew none of the {len(rows)} older ones"
        )
    return rows[keep], int(fresh.sum())


def grown_vocabulary(warm: WarmStart, user_ids: np.ndarray, item_ids: np.ndarray) -> Vocabulary:
    """The blessed model's ids and today's, sorted: no id the towers learned is dropped."""
    old = warm.model.vocabulary
    assert old is not None  # plan_training warm-starts softmax models only
    return Vocabulary(
        np.union1d(old.user_ids, user_ids), np.union1d(old.item_ids, item_ids), old.history_length
    )


def copy_weights(net, warm: TwoTowerModel, vocab: Vocabulary) -> None:
    """Give `net` (built for `vocab`) the blessed model's weights: every layer as it was, and in the
    id embeddings each known id's row moved to its index in the grown vocabulary (new ids keep the
    fresh model's starting vectors)."""
    from recsys_core.model.layers import IdEmbedding

    old_vocab = warm.vocabulary
    assert old_vocab is not None  # plan_training warm-starts softmax models only
    for layer in net.layers:
        if not layer.weights:
            continue
        source = warm.keras_model.get_layer(layer.name).get_weights()
        if isinstance(layer, IdEmbedding):
            ids = old_vocab.user_ids if layer.name == "user_ids" else old_vocab.item_ids
            index = vocab.user_index(ids) if layer.name == "user_ids" else vocab.item_index(ids)
            fresh = layer.get_weights()[0]
            source = [_moved_rows(source[0], fresh.shape, index, fresh)]
        layer.set_weights(source)


def _moved_rows(
    old: np.ndarray, new_shape: tuple, index: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """An id table's rows at their index in the grown vocabulary; rows of new ids are `first`'s."""
    out = np.array(first, dtype=old.dtype, copy=True).reshape(new_shape)
    out[0] = old[0]
    out[index] = old[1 : len(index) + 1]
    return out


def restore_optimizer(optimizer, warm: WarmStart, vocab: Vocabulary) -> bool:
    """Resume the blessed model's Adam (a TowerOptimizer) where its training ended: its step count
    and moments (an id table's rows moved to the grown vocabulary, zero for new ids), the weight
    averages starting at the weights. Without this, Adam's first steps from fresh moments move every
    weight by about the learning rate, whatever its gradient's noise: a few such steps undo much of
    what the blessed model learned. False (nothing restored) for a model saved without its optimizer."""
    from recsys_core.model.tower_optimizer import layer_of

    state = warm.model.optimizer_state
    old = warm.model.vocabulary
    if state is None or old is None or f"m{len(optimizer.weights) - 1}" not in state:
        return False
    tables = {
        "user_ids": (old.user_ids, vocab.user_index),
        "item_ids": (old.item_ids, vocab.item_index),
    }

    def moved(i: int, value: np.ndarray) -> np.ndarray:
        weight = optimizer.weights[i]
        if layer_of(weight) not in tables:
            return value
        ids, index_of = tables[layer_of(weight)]
        shape = tuple(weight.shape)
        return _moved_rows(value, shape, index_of(ids), np.zeros(shape, value.dtype))

    optimizer.restore(state, moved)
    return True
