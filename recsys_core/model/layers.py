"""The Keras layers the softmax towers add to SEED.md's MLPs: learned id embeddings with a path for ids
never seen in training, and the recency-weighted pooling of a user's recent items.

Index 0 of an id vocabulary stands for "no id": an id unseen in training, or an empty history slot.
Both layers are registered, so a saved model loads with this module imported.
"""

from __future__ import annotations

import keras
from keras import ops

INITIAL_STDDEV = 0.05  # of the id embeddings at the start: small beside the content part's outputs


@keras.saving.register_keras_serializable(package="recsys")
class IdEmbedding(keras.layers.Layer):
    """A learned vector per id index; index 0 embeds as zeros, and so, in training, does a seeded
    `dropout` share of the rows (no rescaling), so the content features alone must still place an
    id the model never saw: at serving that id is index 0 and its embedding is zero, as trained."""

    def __init__(self, size: int, dim: int, dropout: float = 0.0, seed: int | None = None, **kw):
        super().__init__(**kw)
        self.size, self.dim, self.dropout, self.seed = size, dim, dropout, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        self.embeddings = self.add_weight(
            shape=(self.size, self.dim),
            initializer=keras.initializers.RandomNormal(stddev=INITIAL_STDDEV, seed=self.seed),
            name="embeddings",
        )

    def call(self, index, training=False, drop=True):
        index = ops.cast(index, "int32")
        vectors = ops.take(self.embeddings, index, axis=0)
        keep = ops.cast(index > 0, vectors.dtype)
        if training and drop and self.dropout > 0:
            draw = keras.random.uniform(ops.shape(index), seed=self.seed_generator)
            keep = keep * ops.cast(draw >= self.dropout, vectors.dtype)
        return vectors * ops.expand_dims(keep, -1)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.dim)

    def get_config(self):
        return {
            **super().get_config(),
            "size": self.size,
            "dim": self.dim,
            "dropout": self.dropout,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="recsys")
class RecencyPool(keras.layers.Layer):
    """The weighted mean of a history's item vectors (batch x length x dim, newest last): the newest
    item weighs 1, one `half_life` items back weighs 1/2; empty slots (index 0) weigh nothing, and
    an empty history pools to zeros."""

    def __init__(self, half_life: float, **kw):
        super().__init__(**kw)
        self.half_life = half_life

    def call(self, vectors, index):
        length = ops.shape(index)[-1]
        age = ops.cast(ops.flip(ops.arange(length), 0), vectors.dtype)
        weights = ops.power(0.5, age / self.half_life) * ops.cast(index > 0, vectors.dtype)
        total = ops.sum(weights, axis=-1, keepdims=True)
        pooled = ops.sum(vectors * ops.expand_dims(weights, -1), axis=-2)
        return pooled / ops.maximum(total, 1e-9)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "half_life": self.half_life}
