"""The two-tower model of SEED.md: user and item MLPs, L2-normalised outputs, dot product, scaled ratings."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_core.config import ModelConfig
from recsys_core.errors import ConfigError, RecsysError
from recsys_core.example_stream import ArrayExamples, summarise, tf_dataset

MODEL_FILE = "model.keras"
META_FILE = "meta.json"
VALIDATION_BATCH = 8192  # batch of the validation pass: no gradients, so as large as memory allows cheaply
# training steps per call into TensorFlow: one Python round trip per 64 batches instead of per batch,
# which was about half of an epoch's time with 256-example batches on 2 cores
STEPS_PER_EXECUTION = 64
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scaler:
    """Standardisation fitted on training rows only; constant columns pass through unscaled."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, weights: np.ndarray | None = None) -> Scaler:
        """Mean and standard deviation of the rows of x, each row counted `weights` times (default once)."""
        mean = np.average(x, axis=0, weights=weights)
        std = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=weights))
        return cls(mean, np.where(std > 0, std, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Scaler:
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))


def build_model(n_user_features: int, n_item_features: int, cfg: ModelConfig, steps_per_execution: int = 1):
    """The Keras model: v_u = norm(userMLP(x_u)), v_m = norm(itemMLP(x_m)), output v_u . v_m."""
    import keras

    if cfg.user_layers[-1] != cfg.item_layers[-1]:
        raise ConfigError(
            f"user tower outputs {cfg.user_layers[-1]} values but item tower outputs "
            f"{cfg.item_layers[-1]}: both towers must end in the same size"
        )
    reg = keras.regularizers.l2(cfg.l2) if cfg.l2 > 0 else None

    def tower(name: str, widths: tuple[int, ...]):
        layers = [keras.layers.Dense(w, activation="relu", kernel_regularizer=reg) for w in widths[:-1]]
        layers.append(keras.layers.Dense(widths[-1], activation="linear", kernel_regularizer=reg))
        return keras.Sequential(layers, name=name)

    input_user = keras.Input(shape=(n_user_features,), name="x_u")
    input_item = keras.Input(shape=(n_item_features,), name="x_m")
    vu = keras.layers.UnitNormalization(axis=1, name="v_u")(tower("user_tower", cfg.user_layers)(input_user))
    vm = keras.layers.UnitNormalization(axis=1, name="v_m")(tower("item_tower", cfg.item_layers)(input_item))
    output = keras.layers.Dot(axes=1, name="score")([vu, vm])
    loss = "mse"
    if cfg.mode == "classification":
        # sigmoid(w * v_u.v_m + b): a learned temperature and bias, because the dot product of unit
        # vectors lies in [-1, 1] and a bare sigmoid of it cannot say more than 0.27..0.73.
        # w >= 0 (a constraint) keeps the ranking by v_u.v_m, which retrieval and ranking use, unchanged.
        output = keras.layers.Dense(
            1, activation="sigmoid", name="probability", kernel_initializer=keras.initializers.Constant(5.0),
            kernel_constraint=keras.constraints.NonNeg(),
        )(output)
        loss = "binary_crossentropy"
    model = keras.Model([input_user, input_item], output, name="two_tower")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate), loss=loss,
                  steps_per_execution=steps_per_execution)
    return model


def _matrix(x) -> tuple[np.ndarray, list[str] | None]:
    if isinstance(x, pd.DataFrame):
        return x.to_numpy(dtype=np.float64), list(x.columns)
    return np.asarray(x, dtype=np.float64), None


@dataclass
class TwoTowerModel:
    """A fitted model with its scalers: everything needed to embed users and items and predict ratings."""

    keras_model: object
    user_scaler: Scaler
    item_scaler: Scaler
    rating_min: float
    rating_max: float
    user_columns: list[str] | None = None
    item_columns: list[str] | None = None
    meta: dict = field(default_factory=dict)
    mode: str = "regression"
    like_threshold: float = 4.0

    def target(self, ratings: np.ndarray) -> np.ndarray:
        """What the network is trained to output: the scaled rating, or the 0/1 "liked" label."""
        if self.mode == "classification":
            ratings = np.asarray(ratings)
            liked = ratings if ratings.dtype == bool else ratings >= self.like_threshold
            return liked.astype(np.float32)
        return self.scale_target(ratings)

    def output(self, scores: np.ndarray) -> np.ndarray:
        """v_u . v_m as the model's prediction: a rating on the original scale, or the probability of a like."""
        slope, intercept, sigmoid = self.output_transform()
        out = slope * np.asarray(scores, dtype=np.float64) + intercept
        return 1.0 / (1.0 + np.exp(-out)) if sigmoid else out

    def output_transform(self) -> tuple[float, float, bool]:
        """(slope, intercept, sigmoid): prediction = [sigmoid](slope * v_u.v_m + intercept), as plain
        numbers, so that Spark can apply it without the Keras model."""
        if self.mode == "classification":
            return (*self.calibration, True)
        half_span = (self.rating_max - self.rating_min) / 2.0
        return half_span, half_span + self.rating_min, False

    @property
    def calibration(self) -> tuple[float, float]:
        """(w, b) of the classification output sigmoid(w * v_u.v_m + b)."""
        kernel, bias = self.keras_model.get_layer("probability").get_weights()
        return float(kernel.ravel()[0]), float(bias.ravel()[0])

    def scale_target(self, ratings: np.ndarray) -> np.ndarray:
        span = self.rating_max - self.rating_min
        return (2.0 * (np.asarray(ratings, dtype=np.float64) - self.rating_min) / span - 1.0).astype(np.float32)

    def to_rating(self, scores: np.ndarray) -> np.ndarray:
        """Map dot products in [-1, 1] back to the rating scale of the training data."""
        return (np.asarray(scores) + 1.0) / 2.0 * (self.rating_max - self.rating_min) + self.rating_min

    def _tower(self, layer: str):
        import keras

        model = self.keras_model
        index = 0 if layer == "v_u" else 1
        return keras.Model(model.inputs[index], model.get_layer(layer).output)

    def _checked(self, x, columns: list[str] | None, what: str, scaler: Scaler) -> np.ndarray:
        matrix, given = _matrix(x)
        if columns is not None and given is not None and given != columns:
            raise RecsysError(f"{what} feature columns differ from the ones the model was trained on")
        width = len(scaler.mean)
        if matrix.ndim != 2 or matrix.shape[1] != width:
            # a bare array of the wrong width would otherwise broadcast against the scaler
            raise RecsysError(
                f"{what} features have {matrix.shape[-1] if matrix.ndim else 0} columns "
                f"(shape {matrix.shape}); the model was trained on {width}"
            )
        if not np.isfinite(matrix).all():
            raise RecsysError(f"{what} features contain NaN or infinite values")
        return matrix

    def embed_users(self, user_features, batch_size: int = 8192) -> np.ndarray:
        x = self.user_scaler.transform(self._checked(user_features, self.user_columns, "user", self.user_scaler))
        return self._tower("v_u").predict(x, batch_size=batch_size, verbose=0)

    def embed_items(self, item_features, batch_size: int = 8192) -> np.ndarray:
        x = self.item_scaler.transform(self._checked(item_features, self.item_columns, "item", self.item_scaler))
        return self._tower("v_m").predict(x, batch_size=batch_size, verbose=0)

    def predict(self, user_features, item_features) -> np.ndarray:
        """Predicted ratings on the original scale (regression) or probabilities of a like (classification)
        for aligned rows of user and item features."""
        scores = np.sum(self.embed_users(user_features) * self.embed_items(item_features), axis=1)
        return self.output(scores)

    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically: a reader sees the old version or the complete new one."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        self.keras_model.save(tmp / MODEL_FILE)
        meta = {
            **self.meta,
            "user_scaler": self.user_scaler.to_dict(),
            "item_scaler": self.item_scaler.to_dict(),
            "rating_min": self.rating_min,
            "rating_max": self.rating_max,
            "user_columns": self.user_columns,
            "item_columns": self.item_columns,
            "mode": self.mode,
            "like_threshold": self.like_threshold,
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TwoTowerModel:
        import keras

        path = Path(path)
        if not (path / MODEL_FILE).exists():
            raise RecsysError(f"no model at {path} (expected {MODEL_FILE} and {META_FILE})")
        meta = json.loads((path / META_FILE).read_text())
        return cls(
            keras_model=keras.models.load_model(path / MODEL_FILE),
            user_scaler=Scaler.from_dict(meta.pop("user_scaler")),
            item_scaler=Scaler.from_dict(meta.pop("item_scaler")),
            rating_min=meta.pop("rating_min"),
            rating_max=meta.pop("rating_max"),
            user_columns=meta.pop("user_columns"),
            item_columns=meta.pop("item_columns"),
            mode=meta.pop("mode", "regression"),
            like_threshold=meta.pop("like_threshold", 4.0),
            meta=meta,
        )


def fit_towers(user_features, item_features, targets, config: ModelConfig | None = None) -> TwoTowerModel:
    """Fit both towers on aligned rows (one per interaction) of raw features and ratings, in memory.

    A seeded share of rows (config.validation_share) is held out; scalers and the rating range are
    fitted on the remaining training rows only. Returns the model with its history in meta.
    """
    cfg = config or ModelConfig()
    xu, user_columns = _matrix(user_features)
    xi, item_columns = _matrix(item_features)
    y = np.asarray(targets)
    if y.dtype != bool:
        y = y.astype(np.float64)
    elif cfg.mode == "regression":
        raise RecsysError("regression mode trains on ratings; got boolean labels (use mode = classification)")
    if not (len(xu) == len(xi) == len(y)) or len(y) == 0:
        raise RecsysError(f"fit_towers needs aligned, non-empty rows; got {len(xu)}, {len(xi)}, {len(y)}")
    if not np.isfinite(y).all():
        raise RecsysError("target training data contains NaN or infinite values")
    order = np.random.default_rng(cfg.seed).permutation(len(y))
    validation = np.zeros(len(y), dtype=bool)
    validation[order[: int(len(y) * cfg.validation_share)]] = True
    if cfg.mode == "classification":
        y = (y if y.dtype == bool else y >= cfg.like_threshold).astype(np.float32)
    rows = np.arange(len(y))
    return fit_towers_on(xu, xi, ArrayExamples(rows, rows, y, validation), cfg, user_columns, item_columns)


def fit_towers_on(
    user_x: np.ndarray, item_x: np.ndarray, examples, cfg: ModelConfig,
    user_columns: list[str] | None = None, item_columns: list[str] | None = None,
) -> TwoTowerModel:
    """Fit both towers on a stream of examples (recsys_core.example_stream): each names a row of the
    user and item feature matrices and a target (the rating in regression mode, the 0/1 label in
    classification mode), flagged as training or validation. Scalers are weighted by how often each
    row occurs in the training examples, so they equal a fit on the materialised training rows."""
    import keras
    import tensorflow as tf

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
        rating_max=rmax if rmax > rmin else rmin + 1.0,
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
    with tempfile.TemporaryDirectory(prefix="recsys-batches-", dir=getattr(examples, "scratch", None)) as folder:
        folder = Path(folder)
        validation = tf_dataset(examples, True, folder / "validation.batches", ut, it, target, VALIDATION_BATCH,
                                None) if n_val else None
        for epoch in range(cfg.epochs):  # each epoch's pass is written afresh: reshuffled, then read natively
            train = tf_dataset(examples, False, folder / "train.batches", ut, it, target, cfg.batch_size,
                               cfg.seed + epoch)
            done = model.keras_model.fit(train, validation_data=validation, initial_epoch=epoch, epochs=epoch + 1,
                                         shuffle=False, verbose=0, callbacks=[_epoch_logger()])
            for key, values in done.history.items():
                history.setdefault(key, []).extend(values)
            del train
            (folder / "train.batches").unlink()  # disk holds one epoch's records at a time
    metrics = {"train_rows": summary.rows, "validation_rows": n_val, "loss": history["loss"]}
    if n_val:
        metrics["val_loss"] = history["val_loss"]
        metrics.update(_validation_metrics(model, examples, ux, ix, summary.target_mean))
    model.meta = {"config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, "metrics": metrics}
    return model


def _validation_metrics(model: TwoTowerModel, examples, ux: np.ndarray, ix: np.ndarray, train_mean: float) -> dict:
    """Log loss, accuracy and the base rate's log loss (classification) or RMSE and the global mean's
    RMSE (regression) over the validation examples, a slice at a time."""
    sums = np.zeros(4)  # rows, model loss, baseline loss, accuracy
    step = VALIDATION_BATCH * 8  # rows of gathered features held at once
    net = _score_net(model)
    for u, i, y in examples.chunks(validation=True):
        for s in range(0, len(y), step):
            scores = net.predict([ux[u[s : s + step]], ix[i[s : s + step]]], batch_size=VALIDATION_BATCH, verbose=0)
            pred = model.output(scores.ravel())
            yy = y[s : s + step].astype(np.float64)
            if model.mode == "classification":
                p = np.clip(pred, 1e-7, 1 - 1e-7)
                sums += (len(yy), -np.sum(yy * np.log(p) + (1 - yy) * np.log(1 - p)),
                         -np.sum(yy * np.log(train_mean) + (1 - yy) * np.log(1 - train_mean)),
                         np.sum((pred >= 0.5) == (yy == 1)))
            else:
                sums += (len(yy), np.sum((pred - yy) ** 2), np.sum((train_mean - yy) ** 2), 0)
    n, loss, base, right = sums
    if model.mode == "classification":
        return {"val_log_loss": float(loss / n), "val_log_loss_base_rate": float(base / n),
                "val_accuracy": float(right / n)}
    return {"val_rmse": float(np.sqrt(loss / n)), "val_rmse_global_mean": float(np.sqrt(base / n))}


def _score_net(model: TwoTowerModel):
    """The network up to v_u . v_m for already scaled inputs (the "score" layer, before any sigmoid)."""
    import keras

    return keras.Model(model.keras_model.inputs, model.keras_model.get_layer("score").output)


def _epoch_logger():
    """A Keras callback logging each epoch's losses, so a task log shows where training is."""
    import keras

    return keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: log.info(
            "epoch %d: %s", epoch + 1, {k: round(float(v), 5) for k, v in (logs or {}).items()}
        )
    )
