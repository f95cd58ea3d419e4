"""Adam with the weights' moving average for the softmax towers, the id tables updated row by row.

Keras' Adam updates every row of a weight on every step: for an id table that is the whole table
(1,000,000 users x 32 floats, its two moments and its moving average) read and written 4 times a
step, though a batch of 256 touches a few hundred rows. At a million users that took 185 ms a step
against the 30 ms of the rest of the step (docs/scale.md). Here the tables' steps touch only the rows
the batch's gradient names, and every row carries the step it was last brought up to date:

- the moments are exact: an untouched row's gradient is zero, so Adam only decays its moments,
  m * beta_1^k and v * beta_2^k after k steps, which is applied when the row is next touched (and for
  every row when training ends);
- the moving average is exact for the weights as trained: an untouched row holds still, so its
  average after k steps is w + (average - w) * momentum^k;
- the one difference from Keras' dense Adam, as in LazyAdam (TensorFlow Addons) and PyTorch's
  SparseAdam: a row moves only on the steps whose batch touches it. Dense Adam keeps moving an
  untouched row along its decaying momentum.

The other weights (the towers' layers, the temperature) take Keras' Adam as before. The state saved
with a model (`state`, for the next night's warm start) is the same as dense Adam's: the step count
and each weight's two moments, by the weight's place in the list trained.
"""

from __future__ import annotations

import numpy as np

from recsys_core.config import ModelConfig

ID_TABLES = ("user_ids", "item_ids")  # the IdEmbedding layers, by name


def layer_of(weight) -> str:
    """The layer a Keras weight belongs to, from its path ("user_ids/embeddings" -> "user_ids")."""
    return str(getattr(weight, "path", "")).split("/")[0]


class RowAdam:
    """Adam (Keras' defaults of beta_1, beta_2, epsilon) and the moving average for id tables,
    updating only the rows a step's gradient touches (see the module's docstring)."""

    def __init__(self, tables: list, learning_rate: float, ema_momentum: float = 0.0):
        import keras
        import tensorflow as tf

        self.lr, self.ema = learning_rate, ema_momentum
        self.beta_1, self.beta_2, self.epsilon = 0.9, 0.999, 1e-7
        # Keras' variables wrap the tf.Variable their rows are scattered into
        self.tables = [t.value if isinstance(t, keras.Variable) else t for t in tables]

        def zeros(t, dtype=tf.float32):
            return tf.Variable(tf.zeros(t.shape, dtype), trainable=False)

        self.m = [zeros(t) for t in self.tables]
        self.v = [zeros(t) for t in self.tables]
        # the step count each row is current at (its moments and average include every step before)
        self.current = [
            tf.Variable(tf.zeros([t.shape[0]], tf.int64), trainable=False) for t in self.tables
        ]
        self.average = (
            [tf.Variable(tf.identity(t), trainable=False) for t in self.tables]
            if ema_momentum
            else []
        )

    def apply(self, grads: list, step) -> None:
        """One step: `grads` (tf.IndexedSlices, one per table), `step` the steps taken before it."""
        import tensorflow as tf

        b1, b2 = self.beta_1, self.beta_2
        t = tf.cast(step + 1, tf.float32)
        alpha = self.lr * tf.sqrt(1 - b2**t) / (1 - b1**t)
        # Keras: the first step's average is the weight
        momentum = tf.where(step > 0, self.ema, 0.0)
        for i, (table, grad) in enumerate(zip(self.tables, grads, strict=True)):
            if not isinstance(grad, tf.IndexedSlices):  # a dense gradient: every row touched
                grad = tf.IndexedSlices(grad, tf.range(tf.shape(grad)[0]))
            rows, at = tf.unique(grad.indices)
            g = tf.math.unsorted_segment_sum(grad.values, at, tf.shape(rows)[0])
            idle = tf.cast(step + 1 - tf.gather(self.current[i], rows), tf.float32)[:, None]
            m = tf.gather(self.m[i], rows) * b1**idle + (1 - b1) * g
            v = tf.gather(self.v[i], rows) * b2**idle + (1 - b2) * tf.square(g)
            old = tf.gather(table, rows)
            new = old - alpha * m / (tf.sqrt(v) + self.epsilon)
            if self.average:
                held = old + (tf.gather(self.average[i], rows) - old) * self.ema ** (idle - 1)
                average = momentum * held + (1 - momentum) * new
                self.average[i].scatter_update(tf.IndexedSlices(average, rows))
            self.m[i].scatter_update(tf.IndexedSlices(m, rows))
            self.v[i].scatter_update(tf.IndexedSlices(v, rows))
            table.scatter_update(tf.IndexedSlices(new, rows))
            self.current[i].scatter_update(
                tf.IndexedSlices(tf.fill(tf.shape(rows), tf.cast(step + 1, tf.int64)), rows)
            )

    def catch_up(self, steps: int) -> None:
        """Bring every row's moments and average up to `steps` steps (the rows held still since)."""
        for i, table in enumerate(self.tables):
            current = self.current[i].numpy()
            if (current == steps).all():  # e.g. `state` then `finalize`: nothing has moved since
                continue
            idle = (steps - current).astype(np.float32)[:, None]
            self.m[i].assign(self.m[i].numpy() * self.beta_1**idle)
            self.v[i].assign(self.v[i].numpy() * self.beta_2**idle)
            if self.average:
                w = table.numpy()
                self.average[i].assign(w + (self.average[i].numpy() - w) * self.ema**idle)
            self.current[i].assign(np.full(table.shape[0], steps, np.int64))

    def restore(self, moments: list[tuple[np.ndarray, np.ndarray]], steps: int) -> None:
        """Resume from saved moments (one (m, v) per table) after `steps` steps; the averages start at
        the tables' weights."""
        for i, (m, v) in enumerate(moments):
            self.m[i].assign(m)
            self.v[i].assign(v)
            self.current[i].assign(np.full(self.tables[i].shape[0], steps, np.int64))
            if self.average:
                self.average[i].assign(self.tables[i])


class TowerOptimizer:
    """Keras' Adam (with `weight_averaging` as its moving average) for the towers' weights, RowAdam
    for the id tables; one `apply` per training step."""

    def __init__(self, weights: list, cfg: ModelConfig):
        import keras

        self.weights = weights
        self.is_table = [layer_of(w) in ID_TABLES for w in weights]
        self.dense = [w for w, table in zip(weights, self.is_table, strict=True) if not table]
        ema = cfg.weight_averaging
        self.adam = keras.optimizers.Adam(
            learning_rate=cfg.learning_rate,
            use_ema=ema > 0,
            ema_momentum=ema or 0.99,  # the value Keras asks for even when unused
        )
        self.adam.build(self.dense)
        tables = [w for w, table in zip(weights, self.is_table, strict=True) if table]
        self.rows = RowAdam(tables, cfg.learning_rate, ema)

    def apply(self, grads: list) -> None:
        """One step (inside the training step's tf.function): the tables first, at Adam's step count
        before this step, then Keras' Adam, which counts it."""
        tables = [g for g, table in zip(grads, self.is_table, strict=True) if table]
        dense = [g for g, table in zip(grads, self.is_table, strict=True) if not table]
        self.rows.apply(tables, self.adam.iterations.value)
        self.adam.apply_gradients(zip(dense, self.dense, strict=True))

    @property
    def steps(self) -> int:
        return int(self.adam.iterations.numpy())

    def state(self) -> dict[str, np.ndarray]:
        """Adam's step count and every weight's moments, `m{i}` and `v{i}` by its place in `weights`
        (the tables' brought up to date), as dense Adam would have them."""
        self.rows.catch_up(self.steps)
        dense = iter(zip(self.adam._momentums, self.adam._velocities, strict=True))
        table = iter(zip(self.rows.m, self.rows.v, strict=True))
        state = {"iterations": np.asarray(self.steps)}
        for i, is_table in enumerate(self.is_table):
            m, v = next(table) if is_table else next(dense)
            state[f"m{i}"], state[f"v{i}"] = m.numpy(), v.numpy()
        return state

    def restore(self, state: dict[str, np.ndarray], moved) -> None:
        """Resume from `state` (as `state` wrote it, for the same list of weights); `moved(i, value)`
        gives weight i's saved moment as this training's weight needs it (an id table's rows moved to
        the grown vocabulary). The moving averages start at the weights."""
        steps = int(state["iterations"])
        dense = iter(range(len(self.dense)))
        table_moments = []
        for i, is_table in enumerate(self.is_table):
            m, v = moved(i, state[f"m{i}"]), moved(i, state[f"v{i}"])
            if is_table:
                table_moments.append((m, v))
                continue
            j = next(dense)
            self.adam._momentums[j].assign(m)
            self.adam._velocities[j].assign(v)
            if self.adam.use_ema:
                self.adam._model_variables_moving_average[j].assign(self.dense[j])
        self.adam.iterations.assign(steps)
        self.rows.restore(table_moments, steps)

    def finalize(self) -> None:
        """With weight averaging, the averages replace the last step's weights."""
        if not self.adam.use_ema:
            return
        self.rows.catch_up(self.steps)
        self.adam.finalize_variable_values(self.dense)
        for table, average in zip(self.rows.tables, self.rows.average, strict=True):
            table.assign(average)
