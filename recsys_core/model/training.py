"""Training the two towers: in memory (SEED.md's model.fit) or from a stream of examples, seeded, with
the validation metrics the run report shows."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from recsys_core import progress
from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.model.input_pipeline import ArrayExamples, summarise, tf_dataset
from recsys_core.model.network import build_model, score_network
from recsys_core.model.two_tower import Scaler, TwoTowerModel, as_matrix

VALIDATION_BATCH = (
    8192  # batch of the validation pass: no gradients, so as large as memory allows cheaply
)
# training steps per call into TensorFlow: a small batch's step costs about as much as the Python
# round trip of a call, so the round trip is paid once per this many batches, not once per batch
STEPS_PER_EXECUTION = 64
PROBABILITY_CLIP = 1e-7  # log loss of a probability of exactly 0 or 1 is infinite
# validation batches whose gathered feature rows are held at once: bounds that copy's memory
VALIDATION_SLICE_BATCHES = 8
DECISION_THRESHOLD = 0.5  # a predicted probability at or above it counts as a like (accuracy)
# the rating range's span when every training target is equal: any positive span avoids scaling by 0
FLAT_TARGET_SPAN = 1.0
log = logging.getLogger(__name__)


def fit_towers(
    user_features, item_features, targets, config: ModelConfig | None = None
) -> TwoTowerModel:
    """Fit both towers on aligned rows (one per interaction) of raw features and ratings, in memory.

    A seeded share of rows (config.validation_share) is held out; scalers and the rating range are
    fitted on the remaining training rows only. Returns the model with its history in meta.
    """
    cfg = config or ModelConfig()
    xu, user_columns = as_matrix(user_features)
    xi, item_columns = as_matrix(item_features)
    y = np.asarray(targets)
    if y.dtype != bool:
        y = y.astype(np.float64)
    elif cfg.mode == "regression":
        raise RecsysError(
            "regression mode trains on ratings; got boolean labels (use mode = classification)"
        )
    if not (len(xu) == len(xi) == len(y)) or len(y) == 0:
        raise RecsysError(
            f"fit_towers needs aligned, non-empty rows; got {len(xu)}, {len(xi)}, {len(y)}"
        )
    if not np.isfinite(y).all():
        raise RecsysError("target training data contains NaN or infinite values")
    order = np.random.default_rng(cfg.seed).permutation(len(y))
    validation = np.zeros(len(y), dtype=bool)
    validation[order[: int(len(y) * cfg.validation_share)]] = True
    if cfg.mode == "classification":
        y = (y if y.dtype == bool else y >= cfg.like_threshold).astype(np.float32)
    rows = np.arange(len(y))
    return fit_towers_on(
        xu, xi, ArrayExamples(rows, rows, y, validation), cfg, user_columns, item_columns
    )


def fit_towers_on(
    user_x: np.ndarray,
    item_x: np.ndarray,
    examples,
    cfg: ModelConfig,
    user_columns: list[str] | None = None,
    item_columns: list[str] | None = None,
) -> TwoTowerModel:
    """Fit both towers on a stream of examples (recsys_core.model.input_pipeline): each names a row of the
    user and item feature matrices and a target (the rating in regression mode, the 0/1 label in
    classification mode), flagged as training or validation. Scalers are weighted by how often each
    row occurs in the training examples, so they equal a fit on the materialised training rows."""
    import keras
    import tensorflow as tf

    if cfg.mode not in ("regression", "classification"):
        raise RecsysError(
            f"fit_towers trains SEED.md's regression and classification towers, not {cfg.mode!r} "
            "(the softmax towers train with recsys_core.model.softmax_training.fit_softmax_towers)"
        )
    for name, m in (("user", user_x), ("item", item_x)):
        if not np.isfinite(m).all():
            raise RecsysError(f"{name} training data contains NaN or infinite values")
    summary = summarise(examples, len(user_x), len(item_x))
    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    classify = cfg.mode == "classification"
    rmin, rmax = (0.0, 1.0) if classify else (summary.target_min, summary.target_max)
    model = TwoTowerModel(
        keras_model=build_model(user_x.shape[1], item_x.shape[1], cfg, STEPS_PER_EXECUTION),
        user_scaler=Scaler.fit(user_x, summary.user_counts),
        item_scaler=Scaler.fit(item_x, summary.item_counts),
        rating_min=rmin,
        rating_max=rmax if rmax > rmin else rmin + FLAT_TARGET_SPAN,
        user_columns=user_columns,
        item_columns=item_columns,
        mode=cfg.mode,
        like_threshold=cfg.like_threshold,
    )
    ux, ix = model.user_scaler.transform(user_x), model.item_scaler.transform(item_x)
    ut, it = tf.constant(ux), tf.constant(ix)  # one copy of each matrix for both datasets
    target = (lambda y: y) if classify else model.scale_target
    n_val = summary.validation_rows
    history: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(
        prefix="recsys-batches-", dir=getattr(examples, "scratch", None)
    ) as scratch:
        folder = Path(scratch)
        validation = (
            tf_dataset(
                examples,
                True,
                folder / "validation.batches",
                ut,
                it,
                target,
                VALIDATION_BATCH,
                None,
            )
            if n_val
            else None
        )
        for epoch in range(
            cfg.epochs
        ):  # each epoch's pass is written afresh: reshuffled, then read natively
            train = tf_dataset(
                examples,
                False,
                folder / "train.batches",
                ut,
                it,
                target,
                cfg.batch_size,
                cfg.seed + epoch,
            )
            done = model.keras_model.fit(
                train,
                validation_data=validation,
                initial_epoch=epoch,
                epochs=epoch + 1,
                shuffle=False,
                verbose=0,
                callbacks=[_epoch_logger(cfg.epochs)],
            )
            for key, values in done.history.items():
                history.setdefault(key, []).extend(values)
            del train
            (folder / "train.batches").unlink()  # disk holds one epoch's records at a time
    metrics = {"train_rows": summary.rows, "validation_rows": n_val, "loss": history["loss"]}
    if n_val:
        metrics["val_loss"] = history["val_loss"]
        metrics.update(_validation_metrics(model, examples, ux, ix, summary.target_mean))
    model.meta = {
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "metrics": metrics,
    }
    return model


def _validation_metrics(
    model: TwoTowerModel, examples, ux: np.ndarray, ix: np.ndarray, train_mean: float
) -> dict:
    """Log loss, accuracy and the base rate's log loss (classification) or RMSE and the global mean's
    RMSE (regression) over the validation examples, a slice at a time."""
    sums = np.zeros(4)  # rows, model loss, baseline loss, accuracy
    step = VALIDATION_BATCH * VALIDATION_SLICE_BATCHES  # rows of gathered features held at once
    net = score_network(model.keras_model)
    for u, i, y in examples.chunks(validation=True):
        for s in range(0, len(y), step):
            scores = net.predict(
                [ux[u[s : s + step]], ix[i[s : s + step]]], batch_size=VALIDATION_BATCH, verbose=0
            )
            pred = model.output(scores.ravel())
            yy = y[s : s + step].astype(np.float64)
            if model.mode == "classification":
                p = np.clip(pred, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
                sums += (
                    len(yy),
                    -np.sum(yy * np.log(p) + (1 - yy) * np.log(1 - p)),
                    -np.sum(yy * np.log(train_mean) + (1 - yy) * np.log(1 - train_mean)),
                    np.sum((pred >= DECISION_THRESHOLD) == (yy == 1)),
                )
            else:
                sums += (len(yy), np.sum((pred - yy) ** 2), np.sum((train_mean - yy) ** 2), 0)
    n, loss, base, right = sums
    if model.mode == "classification":
        return {
            "val_log_loss": float(loss / n),
            "val_log_loss_base_rate": float(base / n),
            "val_accuracy": float(right / n),
        }
    return {"val_rmse": float(np.sqrt(loss / n)), "val_rmse_global_mean": float(np.sqrt(base / n))}


def _epoch_logger(epochs: int):
    """A Keras callback logging each epoch's losses, so a task log shows where training is, and
    noting the batch reached as the step's live progress."""
    import keras

    state = {"epoch": 0}
    return keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: progress.note(
            f"epoch {state['epoch'] + 1}/{epochs}: batch {batch + 1:,}, "
            f"loss {float((logs or {}).get('loss', float('nan'))):.4f}"
        ),
        on_epoch_begin=lambda epoch, logs: state.update(epoch=epoch),
        on_epoch_end=lambda epoch, logs: log.info(
            "epoch %d: %s", epoch + 1, {k: round(float(v), 5) for k, v in (logs or {}).items()}
        ),
    )
