"""A fitted two-tower model: the Keras network with its feature scalers and output transform; it embeds
users and items (v_u, v_m), predicts, and is saved and loaded as one versioned folder."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys_core import columns as C
from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.io.layout import (
    MODEL_FILE,
    MODEL_META_FILE,
    MODEL_OPTIMIZER_FILE,
    MODEL_VOCABULARY_FILE,
    UNIQUE_SUFFIX_CHARS,
)
from recsys_core.model.history import PAD

# the softmax towers' prediction: (1 + v_u . v_m) / 2, the cosine of the two vectors mapped to [0, 1]
SOFTMAX_AFFINITY = (0.5, 0.5, False)
# the saved model.keras (TwoTowerModel.serving_model): its name, its scaling and output layers
SERVING_MODEL = "raw_features_to_prediction"
SCALE_PREFIX = "scale_"
PREDICTION_LAYER = "prediction"
EMBED_BATCH = 8192  # rows per forward pass when embedding: no gradients, so large batches are cheap


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


@dataclass(frozen=True)
class Vocabulary:
    """The ids the softmax towers learned an embedding for (sorted), and how many recent items the user
    tower reads. An id's index is its position + 1; index 0 is an id unseen in training (or an empty
    history slot), which the towers place by its content features alone."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    history_length: int

    @staticmethod
    def _index(known: np.ndarray, ids) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        pos = np.searchsorted(known, ids)
        found = (pos < len(known)) & (known[np.clip(pos, 0, len(known) - 1)] == ids) & (ids != PAD)
        return np.where(found, pos + 1, 0).astype(np.int32)

    def user_index(self, ids) -> np.ndarray:
        return self._index(self.user_ids, ids)

    def item_index(self, ids) -> np.ndarray:
        return self._index(self.item_ids, ids)

    def save(self, path: Path) -> None:
        np.savez(
            path, user_ids=self.user_ids, item_ids=self.item_ids, history_length=self.history_length
        )

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        with np.load(path) as z:
            return cls(z["user_ids"], z["item_ids"], int(z["history_length"]))


def as_matrix(x) -> tuple[np.ndarray, list[str] | None]:
    if isinstance(x, pd.DataFrame):
        return x.to_numpy(dtype=np.float64), list(x.columns)
    return np.asarray(x, dtype=np.float64), None


def aligned(frame: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    """`frame`'s columns in the model's order, matched by name. A genre the model never saw is left
    out and a genre it knew that today's features lack is a zero column (zero is "no such genre" for
    every genre feature): the catalogue's genres may change from one night to the next and the gate
    must still judge yesterday's model. Any other difference is a RecsysError naming the columns."""
    given = set(frame.columns)
    missing = [c for c in columns if c not in given]
    extra = sorted(given - set(columns))
    odd = [c for c in [*missing, *extra] if not c.startswith(C.GENRE_PREFIXES)]
    if odd:
        raise RecsysError(
            f"{what} feature columns differ from the ones the model was trained on: "
            f"missing {missing or 'none'}, unknown {extra or 'none'}"
        )
    return frame.reindex(columns=columns, fill_value=0.0)


@dataclass
class TwoTowerModel:
    """A fitted model with its scalers: everything needed to embed users and items and predict ratings."""

    keras_model: Any  # a keras.Model; Any because keras ships no type information
    user_scaler: Scaler
    item_scaler: Scaler
    rating_min: float
    rating_max: float
    user_columns: list[str] | None = None
    item_columns: list[str] | None = None
    meta: dict = field(default_factory=dict)
    mode: str = ModelConfig.mode
    like_threshold: float = ModelConfig.like_threshold
    vocabulary: Vocabulary | None = None  # softmax mode: the towers also read ids and histories
    # softmax mode: the optimizer's state at the end of training (recsys_core/model/warm_start.py)
    optimizer_state: dict[str, np.ndarray] | None = None

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
        if self.mode == "softmax":
            return SOFTMAX_AFFINITY  # (1 + v_u.v_m) / 2: an affinity in [0, 1], not a probability
        half_span = (self.rating_max - self.rating_min) / 2.0
        return half_span, half_span + self.rating_min, False

    @property
    def calibration(self) -> tuple[float, float]:
        """(w, b) of the classification output sigmoid(w * v_u.v_m + b)."""
        kernel, bias = self.keras_model.get_layer("probability").get_weights()
        return float(kernel.ravel()[0]), float(bias.ravel()[0])

    def scale_target(self, ratings: np.ndarray) -> np.ndarray:
        span = self.rating_max - self.rating_min
        return (
            2.0 * (np.asarray(ratings, dtype=np.float64) - self.rating_min) / span - 1.0
        ).astype(np.float32)

    def to_rating(self, scores: np.ndarray) -> np.ndarray:
        """Map dot products in [-1, 1] back to the rating scale of the training data."""
        return (np.asarray(scores) + 1.0) / 2.0 * (
            self.rating_max - self.rating_min
        ) + self.rating_min

    def _tower(self, layer: str):
        import keras

        model = self.keras_model
        inputs = model.inputs
        if self.vocabulary is not None:  # x_u, user index, history | x_m, item index
            inputs = inputs[:3] if layer == "v_u" else inputs[3:]
        else:
            inputs = inputs[0 if layer == "v_u" else 1]
        return keras.Model(inputs, model.get_layer(layer).output)

    def _checked(self, x, columns: list[str] | None, what: str, scaler: Scaler) -> np.ndarray:
        if columns is not None and isinstance(x, pd.DataFrame) and list(x.columns) != columns:
            x = aligned(x, columns, what)
        matrix, given = as_matrix(x)
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

    def _ids_needed(self, what: str, ids, rows: int) -> np.ndarray:
        if ids is None:
            raise RecsysError(
                f"this {self.mode} model also reads the {what} ids (and the users' recent items): "
                "pass them with the features"
            )
        ids = np.asarray(ids)
        if len(ids) != rows:
            raise RecsysError(f"{len(ids)} {what} ids for {rows} feature rows")
        return ids

    def embed_users(
        self, user_features, user_ids=None, histories=None, batch_size: int = EMBED_BATCH
    ) -> np.ndarray:
        """v_u per row of user features. Softmax mode also reads each user's id and recent items
        (item ids, newest last, PAD-padded: recsys_core.model.history); other modes ignore them."""
        x = self.user_scaler.transform(
            self._checked(user_features, self.user_columns, "user", self.user_scaler)
        )
        inputs: np.ndarray | list[np.ndarray] = x
        if self.vocabulary is not None:
            vocab = self.vocabulary
            ids = self._ids_needed("user", user_ids, len(x))
            histories = self._ids_needed("history", histories, len(x))
            if np.ndim(histories) != 2 or histories.shape[1] != vocab.history_length:
                raise RecsysError(
                    f"histories must be {len(x)} rows of {vocab.history_length} item ids, "
                    f"got shape {np.shape(histories)}"
                )
            inputs = [x, vocab.user_index(ids), vocab.item_index(histories)]
        return self._tower("v_u").predict(inputs, batch_size=batch_size, verbose=0)

    def embed_items(
        self, item_features, item_ids=None, batch_size: int = EMBED_BATCH
    ) -> np.ndarray:
        """v_m per row of item features; softmax mode also reads the item ids."""
        x = self.item_scaler.transform(
            self._checked(item_features, self.item_columns, "item", self.item_scaler)
        )
        inputs: np.ndarray | list[np.ndarray] = x
        if self.vocabulary is not None:
            ids = self._ids_needed("item", item_ids, len(x))
            inputs = [x, self.vocabulary.item_index(ids)]
        return self._tower("v_m").predict(inputs, batch_size=batch_size, verbose=0)

    def predict(self, user_features, item_features) -> np.ndarray:
        """Predicted ratings on the original scale (regression) or probabilities of a like (classification)
        for aligned rows of user and item features."""
        scores = np.sum(self.embed_users(user_features) * self.embed_items(item_features), axis=1)
        return self.output(scores)

    def serving_model(self):
        """The Keras model saved as model.keras, whole on its own: raw features in (scaled by fixed
        Normalization layers holding the training rows' means and deviations), the trained network
        (nested, under its own name), and its output as the prediction: a rating (regression), the
        calibrated probability of a like (classification, the network's sigmoid) or the affinity
        (1 + v_u.v_m) / 2 (softmax). The softmax towers also take the id and history indices of the
        vocabulary (vocabulary.npz), and their layers are registered by recsys_core.model.layers."""
        import keras

        net = self.keras_model
        feeds, raw = [], []
        for tensor in net.inputs:
            name = tensor.name
            given = keras.Input(shape=tensor.shape[1:], dtype=tensor.dtype, name=name)
            raw.append(given)
            scaler = {"x_u": self.user_scaler, "x_m": self.item_scaler}.get(name)
            if scaler is None:
                feeds.append(given)
                continue
            scale = keras.layers.Normalization(
                mean=scaler.mean, variance=np.square(scaler.std), name=f"{SCALE_PREFIX}{name}"
            )
            feeds.append(scale(given))
        out = net(feeds)
        slope, intercept, sigmoid = self.output_transform()
        if not sigmoid:  # classification: the network's own sigmoid layer is the output already
            out = keras.layers.Rescaling(slope, intercept, name=PREDICTION_LAYER)(out)
        return keras.Model(raw, out, name=SERVING_MODEL)

    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically: a reader sees the old version or the complete new one."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:UNIQUE_SUFFIX_CHARS]}")
        tmp.mkdir(parents=True)
        try:
            self.serving_model().save(tmp / MODEL_FILE)
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
            (tmp / MODEL_META_FILE).write_text(json.dumps(meta, indent=2))
            if self.vocabulary is not None:
                self.vocabulary.save(tmp / MODEL_VOCABULARY_FILE)
            if self.optimizer_state is not None:
                np.savez(tmp / MODEL_OPTIMIZER_FILE, **self.optimizer_state)  # type: ignore[arg-type]
        except BaseException:  # an error or a cancel (SIGTERM): no half-written folder is left
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> TwoTowerModel:
        import keras

        path = Path(path)
        if not (path / MODEL_FILE).exists():
            raise RecsysError(f"no model at {path} (expected {MODEL_FILE} and {MODEL_META_FILE})")
        import recsys_core.model.layers  # noqa: F401  (registers the softmax towers' layers)

        meta = json.loads((path / MODEL_META_FILE).read_text())
        vocabulary = path / MODEL_VOCABULARY_FILE
        optimizer = path / MODEL_OPTIMIZER_FILE
        state = None
        if optimizer.exists():
            with np.load(optimizer) as z:
                state = {k: z[k] for k in z.files}
        return cls(
            keras_model=trained_network(keras.models.load_model(path / MODEL_FILE), path),
            user_scaler=Scaler.from_dict(meta.pop("user_scaler")),
            item_scaler=Scaler.from_dict(meta.pop("item_scaler")),
            rating_min=meta.pop("rating_min"),
            rating_max=meta.pop("rating_max"),
            user_columns=meta.pop("user_columns"),
            item_columns=meta.pop("item_columns"),
            mode=meta.pop("mode", ModelConfig.mode),
            like_threshold=meta.pop("like_threshold", ModelConfig.like_threshold),
            vocabulary=Vocabulary.load(vocabulary) if vocabulary.exists() else None,
            optimizer_state=state,
            meta=meta,
        )


def trained_network(saved, path: Path):
    """The trained network inside a loaded model.keras: the one nested model of a serving model
    (this layout), or the file's model itself (the layout before it, whose scaling lived in meta.json
    alone; it loads the same)."""
    import keras

    if saved.name == SERVING_MODEL:
        nested = [layer for layer in saved.layers if isinstance(layer, keras.Model)]
        if len(nested) == 1:
            return nested[0]
    elif any(layer.name == "score" for layer in saved.layers):
        return saved
    raise RecsysError(
        f"{path / MODEL_FILE} holds neither a recsys serving model ({SERVING_MODEL}) nor a bare "
        "two-tower network (a 'score' layer): it was not written by TwoTowerModel.save"
    )
