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

from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.io.layout import MODEL_FILE, MODEL_META_FILE, UNIQUE_SUFFIX_CHARS

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


def as_matrix(x) -> tuple[np.ndarray, list[str] | None]:
    if isinstance(x, pd.DataFrame):
        return x.to_numpy(dtype=np.float64), list(x.columns)
    return np.asarray(x, dtype=np.float64), None


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
        index = 0 if layer == "v_u" else 1
        return keras.Model(model.inputs[index], model.get_layer(layer).output)

    def _checked(self, x, columns: list[str] | None, what: str, scaler: Scaler) -> np.ndarray:
        matrix, given = as_matrix(x)
        if columns is not None and given is not None and given != columns:
            raise RecsysError(
                f"{what} feature columns differ from the ones the model was trained on"
            )
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

    def embed_users(self, user_features, batch_size: int = EMBED_BATCH) -> np.ndarray:
        x = self.user_scaler.transform(
            self._checked(user_features, self.user_columns, "user", self.user_scaler)
        )
        return self._tower("v_u").predict(x, batch_size=batch_size, verbose=0)

    def embed_items(self, item_features, batch_size: int = EMBED_BATCH) -> np.ndarray:
        x = self.item_scaler.transform(
            self._checked(item_features, self.item_columns, "item", self.item_scaler)
        )
        return self._tower("v_m").predict(x, batch_size=batch_size, verbose=0)

    def predict(self, user_features, item_features) -> np.ndarray:
        """Predicted ratings on the original scale (regression) or probabilities of a like (classification)
        for aligned rows of user and item features."""
        scores = np.sum(self.embed_users(user_features) * self.embed_items(item_features), axis=1)
        return self.output(scores)

    def save(self, path: str | Path) -> Path:
        """Write the model directory atomically: a reader sees the old version or the complete new one."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:UNIQUE_SUFFIX_CHARS]}")
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
        (tmp / MODEL_META_FILE).write_text(json.dumps(meta, indent=2))
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
        meta = json.loads((path / MODEL_META_FILE).read_text())
        return cls(
            keras_model=keras.models.load_model(path / MODEL_FILE),
            user_scaler=Scaler.from_dict(meta.pop("user_scaler")),
            item_scaler=Scaler.from_dict(meta.pop("item_scaler")),
            rating_min=meta.pop("rating_min"),
            rating_max=meta.pop("rating_max"),
            user_columns=meta.pop("user_columns"),
            item_columns=meta.pop("item_columns"),
            mode=meta.pop("mode", ModelConfig.mode),
            like_threshold=meta.pop("like_threshold", ModelConfig.like_threshold),
            meta=meta,
        )
