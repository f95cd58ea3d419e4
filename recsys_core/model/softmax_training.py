"""Training the softmax towers: the retrieval objective of two-tower models, seeded.

Each positive interaction (a liked item, or any, per `label`) is one example: the user as they were
just before it (features, id, the `history_length` items before it in time) and the item. A batch of
B examples is scored against B + S items, its own targets (in-batch negatives) plus S items drawn
uniformly from the catalogue, and the loss is the softmax cross-entropy of each user's own target
over v_u . v_m / T, T a learned temperature. A candidate item j that the batch would hold
E[j] = B * p(j) + S / n times on average (p: its share of the training targets) has log E[j]
subtracted from its logits (the logQ correction of sampled softmax, Yi et al. 2019; the mixed
in-batch and uniform form of Yang et al. 2020), so frequent items are not punished for being
sampled often; other targets of the same item in a batch are masked, not counted as negatives.
`logq_weight` scales that correction: at 1 the softmax is unbiased; above 1 the towers must raise
frequent items' dot products to make up for it, so they learn the lean towards often-liked items that
top-K accuracy on a later period rewards (docs/model.md has the figures; the settings search tries it).

The towers kept are the exponential moving average of the weights over the training steps
(`weight_averaging`, the momentum; 0 keeps the last step's): one training's ranking moves by a few
percent with the seed alone, and the average of the last ~100 steps' weights moves less. The id
tables' Adam and average update only the rows a batch touches (recsys_core/model/tower_optimizer.py):
at a million users, updating every row took six times the rest of the step.

Memory: the interactions as four arrays (recsys_core.model.history.Sequences) and the feature
matrices; a batch's histories are gathered when the batch is drawn.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from recsys_core import columns as C
from recsys_core import progress
from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.model.history import PAD, Sequences
from recsys_core.model.tower_optimizer import TowerOptimizer
from recsys_core.model.training_examples import feature_matrices
from recsys_core.model.two_tower import Scaler, TwoTowerModel, Vocabulary
from recsys_core.model.warm_start import (
    WarmStart,
    copy_weights,
    grown_vocabulary,
    replay_rows,
    restore_optimizer,
)

log = logging.getLogger(__name__)
MASKED = -1e9  # the logit of another example's copy of the same target: never a negative


def fit_softmax_towers(
    user_features: pd.DataFrame,
    item_features: pd.DataFrame,
    interactions: pd.DataFrame,
    cfg: ModelConfig,
    warm: WarmStart | None = None,
) -> TwoTowerModel:
    """Fit the softmax towers on `interactions` (user_id, item_id, timestamp, rating). Interactions of
    users or items missing from the feature tables are skipped; every catalogue item can be a
    sampled negative. A seeded `validation_share` of the examples reports a validation loss.
    With `warm`, training starts from that model (recsys_core/model/warm_start.py): its weights,
    scalers and temperature, on the interactions newer than its data plus a replay of older ones;
    every interaction still gives the histories."""
    import keras
    import tensorflow as tf

    from recsys_core.model.network import build_softmax_model

    users = user_features.sort_values(C.USER_ID, kind="stable").reset_index(drop=True)
    items = item_features.sort_values(C.ITEM_ID, kind="stable").reset_index(drop=True)
    xu, xi, ucols, icols = feature_matrices(users, items)
    for name, m in (("user", xu), ("item", xi)):
        if not np.isfinite(m).all():
            raise RecsysError(f"{name} training data contains NaN or infinite values")
    user_ids, item_ids = users[C.USER_ID].to_numpy(np.int64), items[C.ITEM_ID].to_numpy(np.int64)
    known = interactions[C.USER_ID].isin(user_ids) & interactions[C.ITEM_ID].isin(item_ids)
    seq = Sequences.of(interactions if known.all() else interactions[known])
    positive = (
        seq.ratings >= cfg.like_threshold if cfg.label == "liked" else np.ones(len(seq), bool)
    )
    rows = np.flatnonzero(positive)
    if len(rows) == 0:
        raise RecsysError(
            f"no {cfg.label} interaction of a known user and item: nothing to train on"
        )
    vocab = Vocabulary(np.unique(seq.user_ids), np.unique(seq.item_ids), cfg.history_length)
    new_rows = len(rows)
    if warm is not None:
        rows, new_rows = replay_rows(rows, seq.timestamps, warm, cfg)
        vocab = grown_vocabulary(warm, vocab.user_ids, vocab.item_ids)
    # per interaction row: its user's and item's feature rows and id indices
    u_row, i_row = np.searchsorted(user_ids, seq.user_ids), np.searchsorted(item_ids, seq.item_ids)
    u_idx, i_idx = vocab.user_index(seq.user_ids), vocab.item_index(seq.item_ids)
    catalogue_idx = vocab.item_index(item_ids)
    rng = np.random.default_rng(cfg.seed)
    validation = rng.random(len(rows)) < cfg.validation_share
    train_rows, val_rows = rows[~validation], rows[validation]
    if len(train_rows) == 0:
        raise RecsysError("every example fell into the validation share: nothing to train on")
    target_share = np.bincount(i_row[train_rows], minlength=len(items)) / len(train_rows)

    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    net = build_softmax_model(
        len(ucols), len(icols), len(vocab.user_ids) + 1, len(vocab.item_ids) + 1, cfg
    )
    if warm is not None:
        copy_weights(net, warm.model, vocab)
    model = TwoTowerModel(
        keras_model=net,
        user_scaler=warm.model.user_scaler
        if warm
        else Scaler.fit(xu, np.bincount(u_row[train_rows], minlength=len(users)) + 1),
        item_scaler=warm.model.item_scaler
        if warm
        else Scaler.fit(xi, np.bincount(i_row[train_rows], minlength=len(items)) + 1),
        rating_min=0.0,
        rating_max=1.0,
        user_columns=ucols,
        item_columns=icols,
        mode=cfg.mode,
        like_threshold=cfg.like_threshold,
        vocabulary=vocab,
    )
    user_tower = keras.Model(net.inputs[:3], net.get_layer("v_u").output)
    item_tower = keras.Model(net.inputs[3:], net.get_layer("v_m").output)
    ux = tf.constant(model.user_scaler.transform(xu))
    ix = tf.constant(model.item_scaler.transform(xi))
    start_temperature = warm.model.meta["temperature"] if warm else cfg.initial_temperature
    log_temperature = tf.Variable(np.log(start_temperature), dtype=tf.float32)
    weights = [*net.trainable_weights, log_temperature]
    # the weights kept are an exponential moving average of the steps' weights (cfg.weight_averaging)
    optimizer = TowerOptimizer(weights, cfg)
    resumed = warm is not None and restore_optimizer(optimizer, warm, vocab)
    signature = [
        tf.TensorSpec([None], tf.int32),  # user feature rows
        tf.TensorSpec([None], tf.int32),  # user id indices
        tf.TensorSpec([None, cfg.history_length], tf.int32),  # history item id indices
        tf.TensorSpec([None], tf.int32),  # candidate item feature rows (targets first)
        tf.TensorSpec([None], tf.int32),  # candidate item id indices
        tf.TensorSpec([None], tf.float32),  # log E[j] of each candidate
    ]

    def batch_loss(u_rows, u_index, hist, c_rows, c_index, log_expected, training):
        vu = user_tower([tf.gather(ux, u_rows), u_index, hist], training=training)
        vm = item_tower([tf.gather(ix, c_rows), c_index], training=training)
        return sampled_softmax_loss(vu, vm, c_rows, log_expected, log_temperature)

    @tf.function(input_signature=signature, autograph=False)  # no Python control flow to convert
    def validation_step(*batch_tensors):
        return batch_loss(*batch_tensors, False)

    @tf.function(input_signature=signature, autograph=False)  # no Python control flow to convert
    def train_step(u_rows, u_index, hist, c_rows, c_index, log_expected):
        with tf.GradientTape() as tape:
            loss = batch_loss(u_rows, u_index, hist, c_rows, c_index, log_expected, True)
            total = loss + tf.add_n([tf.constant(0.0), *net.losses])
        optimizer.apply(tape.gradient(total, weights))
        return loss

    def batch(chosen: np.ndarray, draw: np.random.Generator) -> list:
        window = seq.window_rows(chosen, cfg.history_length)
        hist = np.where(window >= 0, i_idx[np.clip(window, 0, None)], 0)
        negatives = draw.integers(0, len(items), size=cfg.sampled_negatives)
        c_rows = np.concatenate([i_row[chosen], negatives])
        expected = len(chosen) * target_share[c_rows] + cfg.sampled_negatives / len(items)
        log_expected = cfg.logq_weight * np.log(np.maximum(expected, 1e-12))
        return [
            u_row[chosen].astype(np.int32),
            u_idx[chosen],
            hist.astype(np.int32),
            c_rows.astype(np.int32),
            catalogue_idx[c_rows],
            log_expected.astype(np.float32),
        ]

    def passes(chosen_rows: np.ndarray, seed: int):
        draw = np.random.default_rng(seed)
        for s in range(0, len(chosen_rows), cfg.batch_size):
            yield batch(chosen_rows[s : s + cfg.batch_size], draw)

    history: dict[str, list[float]] = {"loss": [], "val_loss": [], "temperature": []}
    trained, train_seconds = 0, 0.0  # the training passes' examples and time (not validation's)
    epochs = cfg.warm_epochs if warm else cfg.epochs
    for epoch in range(epochs):
        order = np.random.default_rng([cfg.seed, epoch]).permutation(train_rows)
        start = time.perf_counter()
        losses = []
        for done, b in enumerate(passes(order, cfg.seed + epoch)):
            losses.append(float(train_step(*b)))
            progress.note(
                f"epoch {epoch + 1}/{epochs}: {min((done + 1) * cfg.batch_size, len(order)):,}"
                f"/{len(order):,} examples, loss {np.mean(losses[-50:]):.4f}"
            )
        trained, train_seconds = trained + len(order), train_seconds + time.perf_counter() - start
        history["loss"].append(float(np.mean(losses)))
        history["temperature"].append(float(np.exp(log_temperature.numpy())))
        if len(val_rows):
            val = [float(validation_step(*b)) for b in passes(val_rows, cfg.seed)]
            history["val_loss"].append(float(np.mean(val)))
        log.info("epoch %d: %s", epoch + 1, {k: round(v[-1], 5) for k, v in history.items() if v})
    model.optimizer_state = optimizer.state()
    optimizer.finalize()  # with weight averaging, the averages replace the last step's weights
    metrics = {"train_rows": int(len(train_rows)), "validation_rows": int(len(val_rows)), **history}
    if not len(val_rows):
        metrics.pop("val_loss")
    model.meta = {
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "metrics": metrics,
        "temperature": history["temperature"][-1],
        "training": {
            "kind": "warm" if warm else "full",
            "parent": warm.version if warm else None,
            "full_retrain_ds": warm.full_retrain_ds if warm else None,
            # the newest interaction given: a warm start from this model trains on later ones
            "trained_until": int(seq.timestamps.max()),
            "new_rows": int(new_rows),
            "optimizer_resumed": bool(resumed),
            "examples": int(trained),
            "examples_per_second": round(trained / max(train_seconds, 1e-9), 1),
        },
    }
    return model


def sampled_softmax_loss(vu, vm, c_rows, log_expected, log_temperature):
    """The mean softmax cross-entropy of each user's own item over a batch's candidates.

    vu: B user vectors; vm: the vectors of the B + S candidates, the B targets first (row b's target is
    candidate b); c_rows: the candidates' item rows (equal rows are the same item); log_expected: log
    E[j] of each candidate (the logQ correction); logits are v_u.v_m / exp(log_temperature) - log E[j],
    with another example's copy of a row's target masked."""
    import tensorflow as tf

    logits = tf.matmul(vu, vm, transpose_b=True) / tf.exp(log_temperature) - log_expected
    b = tf.shape(vu)[0]
    own = tf.pad(tf.eye(b, dtype=tf.bool), [[0, 0], [0, tf.shape(c_rows)[0] - b]])
    duplicate = tf.equal(c_rows[:b][:, None], c_rows[None, :]) & ~own
    logits = tf.where(duplicate, MASKED, logits)
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.range(b), logits))


def histories_of(
    model: TwoTowerModel, interactions: pd.DataFrame, users: np.ndarray
) -> np.ndarray | None:
    """The recent items the model's user tower reads for `users`, from `interactions`; None for a
    model that reads none."""
    if model.vocabulary is None:
        return None
    return Sequences.of(interactions).recent(users, model.vocabulary.history_length)


__all__ = ["PAD", "fit_softmax_towers", "histories_of"]
