"""The id tables' row-by-row Adam: exact against dense Adam where its definition says it is."""

import dataclasses

import numpy as np
import pytest

from recsys_core.config import ModelConfig
from recsys_core.model.tower_optimizer import RowAdam, TowerOptimizer

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

ROWS, DIM, STEPS = 12, 3, 9
B1, B2, EPS, LR, EMA = 0.9, 0.999, 1e-7, 0.01, 0.9


def _touches(seed: int) -> list[np.ndarray]:
    """Each step's rows (some repeated, some rows idle for several steps)."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, ROWS, rng.integers(1, 6)) for _ in range(STEPS)]


def _grad(rows: np.ndarray, step: int) -> np.ndarray:
    """A deterministic gradient value per touch (not a dense function of the table)."""
    return np.sin(np.arange(len(rows) * DIM, dtype=np.float32).reshape(-1, DIM) + step)


def _reference(w0: np.ndarray, touches: list[np.ndarray]):
    """The definition, dense: every step decays every row's moments and advances every row's moving
    average (Keras: the first step's average is the weight); only the touched rows' weights move."""
    w, m, v, avg = w0.copy(), np.zeros_like(w0), np.zeros_like(w0), w0.copy()
    for s, rows in enumerate(touches):
        g = np.zeros_like(w0)
        np.add.at(g, rows, _grad(rows, s))
        m, v = B1 * m + (1 - B1) * g, B2 * v + (1 - B2) * g * g
        t = s + 1
        alpha = LR * np.sqrt(1 - B2**t) / (1 - B1**t)
        touched = np.unique(rows)
        w[touched] -= alpha * m[touched] / (np.sqrt(v[touched]) + EPS)
        mom = EMA if s > 0 else 0.0
        avg = mom * avg + (1 - mom) * w
    return w, m, v, avg


def _row_adam(w0: np.ndarray, touches: list[np.ndarray]) -> RowAdam:
    table = tf.Variable(w0)
    opt = RowAdam([table], LR, EMA)
    for s, rows in enumerate(touches):
        grad = tf.IndexedSlices(tf.constant(_grad(rows, s)), tf.constant(rows, tf.int32))
        opt.apply([grad], tf.constant(s, tf.int64))
    opt.catch_up(len(touches))
    return opt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_adam_equals_the_dense_definition_with_idle_rows(seed):
    """Moments and moving averages of rows idle for several steps, and rows touched twice in a step,
    come out as the dense definition gives them."""
    w0 = np.random.default_rng(seed).normal(size=(ROWS, DIM)).astype(np.float32)
    touches = _touches(seed)
    w, m, v, avg = _reference(w0, touches)
    opt = _row_adam(w0, touches)
    assert any(len(np.setdiff1d(np.arange(ROWS), r)) for r in touches)  # some rows were idle
    np.testing.assert_allclose(opt.tables[0].numpy(), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(opt.m[0].numpy(), m, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(opt.v[0].numpy(), v, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(opt.average[0].numpy(), avg, rtol=1e-5, atol=1e-6)


def _net():
    from recsys_core.model.layers import IdEmbedding

    index = keras.Input(shape=(), dtype="int32")
    x = IdEmbedding(ROWS, DIM, name="user_ids", seed=1)(index)
    out = keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed=2))(x)
    return keras.Model(index, out)


def _train(optimizer_of, steps: int = STEPS):
    """Train a small net on batches that touch every id row every step; returns its weights."""
    keras.utils.set_random_seed(0)
    net = _net()
    weights = net.trainable_weights
    apply = optimizer_of(weights)
    batch = tf.constant(np.arange(ROWS), tf.int32)
    target = tf.constant(np.linspace(-1, 1, ROWS, dtype=np.float32)[:, None])
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(batch) - target))
        apply(tape.gradient(loss, weights))
    return net, weights


def test_tower_optimizer_equals_keras_adam_when_every_row_is_touched():
    """With every id row in every batch the row-by-row Adam is Keras' dense Adam, averages included."""
    cfg = dataclasses.replace(ModelConfig(), learning_rate=LR, weight_averaging=EMA)

    def ours(weights):
        opt = TowerOptimizer(weights, cfg)
        ours.opt = opt
        return opt.apply

    def keras_adam(weights):
        opt = keras.optimizers.Adam(learning_rate=LR, use_ema=True, ema_momentum=EMA)
        keras_adam.opt = opt
        return lambda grads: opt.apply_gradients(zip(grads, weights, strict=True))

    net, weights = _train(ours)
    assert ours.opt.is_table == [True, False, False]  # the table, the kernel, the bias
    ours.opt.finalize()
    ref_net, ref_weights = _train(keras_adam)
    keras_adam.opt.finalize_variable_values(ref_weights)
    for a, b in zip(weights, ref_weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_state_and_restore_continue_training_as_if_uninterrupted():
    """The saved state (step count, every weight's moments by place) resumed in a new optimizer trains
    on exactly as one optimizer would have; the moments match Keras' layout of dense Adam."""
    cfg = dataclasses.replace(ModelConfig(), learning_rate=LR, weight_averaging=0.0)
    whole, _ = _train(lambda w: TowerOptimizer(w, cfg).apply, steps=2 * STEPS)

    first = {}

    def resumed(weights):
        opt = TowerOptimizer(weights, cfg)
        first["opt"] = opt
        return opt.apply

    net, weights = _train(resumed, steps=STEPS)
    state = first["opt"].state()
    assert int(state["iterations"]) == STEPS
    assert sorted(state) == ["iterations", "m0", "m1", "m2", "v0", "v1", "v2"]
    assert state["m0"].shape == (ROWS, DIM) and np.abs(state["m0"]).sum() > 0
    again = TowerOptimizer(weights, cfg)
    again.restore(state, lambda i, value: value)
    batch = tf.constant(np.arange(ROWS), tf.int32)
    target = tf.constant(np.linspace(-1, 1, ROWS, dtype=np.float32)[:, None])
    for _ in range(STEPS):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(net(batch) - target))
        again.apply(tape.gradient(loss, weights))
    for a, b in zip(net.trainable_weights, whole.trainable_weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
