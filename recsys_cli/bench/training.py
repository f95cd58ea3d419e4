"""`recsys bench training`: the towers trained from a stream of examples against the plain
`model.fit` on in-memory arrays of SEED.md, same architecture, batch size and examples, one epoch.

Two models, each with its two methods:
- classification (mode="classification"): `stream` trains from the Parquet example stream
  (fit_towers_on), `in_memory` is model.fit on whole arrays of feature rows.
- softmax (mode="softmax", the pipeline's default): `softmax_stream` is fit_softmax_towers, whose
  loop gathers each batch's recent-item histories when the batch is drawn; `softmax_in_memory` is
  model.fit of a keras.Model around the same network, on every example's inputs materialised up
  front as arrays, its train_step drawing the sampled negatives and applying the same loss.

Each method runs in its own child process, so its peak resident memory (ru_maxrss) is its own. The
data are written to files before any clock starts; both methods of a model read the same files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from recsys_cli.bench.commands import (
    TRAINING_BATCH_SIZE,
    TRAINING_ITEMS,
    TRAINING_MODELS,
    TRAINING_SOFTMAX_EXAMPLES,
    TRAINING_USERS,
)
from recsys_cli.bench.measure import peak_rss_mb

# each model's methods: the in-memory reference first
METHODS = ("in_memory", "stream")  # the classification towers'
SOFTMAX_METHODS = ("softmax_in_memory", "softmax_stream")
MODEL_METHODS = {"classification": METHODS, "softmax": SOFTMAX_METHODS}
USER_FEATURES, ITEM_FEATURES = (
    46,
    24,
)  # the widths the pipeline's feature tables have with 18 genres
EXAMPLE_CHUNK_ROWS = 1 << 22  # examples generated and written at a time: bounds the writer's memory
# share of positive labels: one interaction in 1 + model.negatives (4 by default) examples
POSITIVE_SHARE = 0.2
SEED = 0
ERROR_TAIL_CHARS = 2000  # of a failed child's stderr in the error: where the traceback ends
# the softmax data: users and items fall into TASTES groups, each user interacting only with items
# of their group (something to learn); users' and items' features are noise plus their group's
# centre, scaled by TASTE_SIGNAL. Within a group, item popularity is skewed (the uniform draw
# raised to POPULARITY_SKEW), so the logQ correction has frequent items to correct for.
TASTES = 16
TASTE_SIGNAL = 1.0
POPULARITY_SKEW = 3.0
TIMESTAMP_SPAN = 10**8  # seconds over which the interactions' timestamps are spread
SOFTMAX_FILES = ("softmax_users.parquet", "softmax_items.parquet", "softmax_interactions.parquet")


def write_data(folder: Path, users: int, items: int, examples: int, seed: int) -> None:
    """The classification data: random feature matrices and labelled examples in Parquet."""
    from recsys_core.model.input_pipeline import write_examples

    rng = np.random.default_rng(seed)
    np.save(folder / "users.npy", rng.normal(size=(users, USER_FEATURES)))
    np.save(folder / "items.npy", rng.normal(size=(items, ITEM_FEATURES)))
    step = EXAMPLE_CHUNK_ROWS

    def chunks():
        for s in range(0, examples, step):
            n = min(step, examples - s)
            yield (
                rng.integers(0, users, n),
                rng.integers(0, items, n),
                (rng.random(n) < POSITIVE_SHARE).astype(np.float32),
            )

    write_examples(chunks(), folder / "examples.parquet", validation_share=0.0, seed=seed)


def write_softmax_data(folder: Path, users: int, items: int, interactions: int, seed: int) -> None:
    """The softmax data: user and item feature tables and `interactions` rated 4 or 5 (every one a
    positive of the default label "liked"), with timestamps, in Parquet."""
    import pandas as pd

    from recsys_core import columns as C

    rng = np.random.default_rng(seed)
    user_taste, item_taste = rng.integers(0, TASTES, users), rng.integers(0, TASTES, items)

    def features(prefix: str, taste: np.ndarray, width: int) -> dict:
        centre = rng.normal(size=(TASTES, width)) * TASTE_SIGNAL
        x = rng.normal(size=(len(taste), width)) + centre[taste]
        return {f"{prefix}{k}": x[:, k] for k in range(width)}

    user_frame = pd.DataFrame(
        {C.USER_ID: np.arange(users), **features("u_", user_taste, USER_FEATURES)}
    )
    item_frame = pd.DataFrame(
        {C.ITEM_ID: np.arange(items), **features("i_", item_taste, ITEM_FEATURES)}
    )
    # each interaction: a user (every user once while there are interactions for it, as in a
    # pipeline's data, where every user in the model's vocabulary has interacted; then uniform), then
    # an item of the user's group, the first of the group the most popular (a group without items
    # takes any item)
    by_taste = np.argsort(item_taste, kind="stable")
    counts = np.bincount(item_taste, minlength=TASTES)
    offsets = np.r_[0, np.cumsum(counts)[:-1]]
    first = rng.permutation(users)[: min(users, interactions)]
    who = np.concatenate([first, rng.integers(0, users, interactions - len(first))])
    group = user_taste[who]
    size = np.where(counts[group] > 0, counts[group], items)
    start = np.where(counts[group] > 0, offsets[group], 0)
    pick = np.minimum(
        (rng.random(interactions) ** POPULARITY_SKEW * size).astype(np.int64), size - 1
    )
    what = np.where(counts[group] > 0, by_taste[start + pick], start + pick)
    interaction_frame = pd.DataFrame(
        {
            C.USER_ID: who,
            C.ITEM_ID: what,
            C.RATING: rng.choice([4.0, 5.0], interactions),
            C.TIMESTAMP: rng.integers(0, TIMESTAMP_SPAN, interactions),
        }
    )
    for frame, name in zip((user_frame, item_frame, interaction_frame), SOFTMAX_FILES, strict=True):
        frame.to_parquet(folder / name, index=False)


def _config(mode: str, batch_size: int):
    import dataclasses

    from recsys_core.config import ModelConfig

    return dataclasses.replace(
        ModelConfig(), mode=mode, epochs=1, batch_size=batch_size, validation_share=0.0
    )


def run_method(method: str, folder: Path, batch_size: int) -> dict:
    if method in SOFTMAX_METHODS:
        return run_softmax_method(method, folder, batch_size)
    import keras

    from recsys_core.model.input_pipeline import ParquetExamples
    from recsys_core.model.network import build_model
    from recsys_core.model.training import fit_towers_on

    cfg = _config("classification", batch_size)
    xu, xi = np.load(folder / "users.npy"), np.load(folder / "items.npy")
    before = peak_rss_mb()
    if method == "in_memory":
        import pyarrow.parquet as pq

        t = pq.read_table(folder / "examples.parquet")
        u, i, y = (t.column(c).to_numpy() for c in ("user_pos", "item_pos", "target"))
        keras.utils.set_random_seed(cfg.seed)
        model = build_model(xu.shape[1], xi.shape[1], cfg)
        # SEED.md: model.fit on whole arrays of feature rows, one per example; only the fit is timed
        xu_rows, xi_rows = xu[u].astype(np.float32), xi[i].astype(np.float32)
        start = time.perf_counter()
        history = model.fit(
            [xu_rows, xi_rows], y, epochs=1, batch_size=batch_size, shuffle=True, verbose=0
        )
        rows, loss = len(y), history.history["loss"][-1]
    elif (
        method == "stream"
    ):  # timed whole: the pass over the examples, the scalers, the model, the fit
        start = time.perf_counter()
        model = fit_towers_on(xu, xi, ParquetExamples(folder / "examples.parquet"), cfg)
        rows, loss = model.meta["metrics"]["train_rows"], model.meta["metrics"]["loss"][-1]
    else:
        raise ValueError(f"unknown method {method!r}; one of {METHODS + SOFTMAX_METHODS}")
    seconds = time.perf_counter() - start
    return _result(method, rows, seconds, loss, before)


def _result(method: str, rows: int, seconds: float, loss: float, before: float, **more) -> dict:
    return {
        "method": method,
        "examples": int(rows),
        "seconds": seconds,
        "examples_per_second": rows / seconds,
        "loss": float(loss),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
        **more,
    }


def run_softmax_method(method: str, folder: Path, batch_size: int) -> dict:
    import pandas as pd

    from recsys_core.model.softmax_training import fit_softmax_towers

    cfg = _config("softmax", batch_size)
    users, items, interactions = (pd.read_parquet(folder / name) for name in SOFTMAX_FILES)
    before = peak_rss_mb()
    if method == "softmax_stream":
        # timed whole, as `stream`: the sort into histories, the vocabulary, scalers, model and fit
        start = time.perf_counter()
        model = fit_softmax_towers(users, items, interactions, cfg)
        seconds = time.perf_counter() - start
        metrics = model.meta["metrics"]
        return _result(method, metrics["train_rows"], seconds, metrics["loss"][-1], before)
    if method != "softmax_in_memory":
        raise ValueError(f"unknown method {method!r}; one of {METHODS + SOFTMAX_METHODS}")
    prepare_start = time.perf_counter()
    model, x, first_loss = softmax_in_memory_model(users, items, interactions, cfg)
    prepare_seconds = time.perf_counter() - prepare_start
    start = time.perf_counter()  # only model.fit is timed, as `in_memory`
    history = model.fit(x, batch_size=cfg.batch_size, epochs=1, shuffle=True, verbose=0)
    seconds = time.perf_counter() - start
    rows = len(x["item_row"])
    return _result(
        method,
        rows,
        seconds,
        history.history["loss"][-1],
        before,
        prepare_seconds=prepare_seconds,
        first_batch_loss=first_loss,
    )


def softmax_in_memory_model(users, items, interactions, cfg) -> tuple:
    """The reference of fit_softmax_towers: every training example's inputs as arrays (scaled user
    and target feature rows, id indices, the history window, the target's catalogue row and its
    share of the targets), and a compiled keras.Model whose train_step draws the uniform negatives
    and applies sampled_softmax_loss. Returns the model, the arrays (model.fit's x) and the loss of
    the untrained model on the first batch of examples.

    Built as fit_softmax_towers builds it (the vocabulary, the scalers weighted by training counts,
    the network, the learned temperature, Adam, the seeds, op determinism). What differs: every
    example's inputs are materialised before training (rows x (user + item features + history
    length) values) and Keras' fit feeds and shuffles them; the negatives are drawn with tf.random
    in the graph, not with numpy; the target's features are gathered once up front, the negatives'
    in the step; fit_softmax_towers' check of non-finite features and of unknown ids is left out
    (the bench's data have neither)."""
    import keras
    import tensorflow as tf

    from recsys_core import columns as C
    from recsys_core.features.names import feature_columns
    from recsys_core.model.history import Sequences
    from recsys_core.model.network import build_softmax_model
    from recsys_core.model.softmax_training import sampled_softmax_loss
    from recsys_core.model.two_tower import Scaler, Vocabulary

    users = users.sort_values(C.USER_ID, kind="stable").reset_index(drop=True)
    items = items.sort_values(C.ITEM_ID, kind="stable").reset_index(drop=True)
    ucols = feature_columns(list(users.columns), C.USER_ID)
    icols = feature_columns(list(items.columns), C.ITEM_ID)
    xu, xi = users[ucols].to_numpy(np.float64), items[icols].to_numpy(np.float64)
    user_ids, item_ids = users[C.USER_ID].to_numpy(np.int64), items[C.ITEM_ID].to_numpy(np.int64)
    seq = Sequences.of(interactions)
    positive = (
        seq.ratings >= cfg.like_threshold if cfg.label == "liked" else np.ones(len(seq), bool)
    )
    train_rows = np.flatnonzero(positive)  # validation_share is 0: every positive trains
    vocab = Vocabulary(np.unique(seq.user_ids), np.unique(seq.item_ids), cfg.history_length)
    u_row, i_row = np.searchsorted(user_ids, seq.user_ids), np.searchsorted(item_ids, seq.item_ids)
    u_idx, i_idx = vocab.user_index(seq.user_ids), vocab.item_index(seq.item_ids)
    catalogue_idx = vocab.item_index(item_ids)
    target_share = np.bincount(i_row[train_rows], minlength=len(items)) / len(train_rows)
    user_scaler = Scaler.fit(xu, np.bincount(u_row[train_rows], minlength=len(users)) + 1)
    item_scaler = Scaler.fit(xi, np.bincount(i_row[train_rows], minlength=len(items)) + 1)
    ux, ix = user_scaler.transform(xu), item_scaler.transform(xi)
    window = seq.window_rows(train_rows, cfg.history_length)
    x = {
        "x_u": ux[u_row[train_rows]],
        "user_index": u_idx[train_rows],
        "history": np.where(window >= 0, i_idx[np.clip(window, 0, None)], 0).astype(np.int32),
        "x_m": ix[i_row[train_rows]],
        "item_index": i_idx[train_rows],
        "item_row": i_row[train_rows].astype(np.int32),
        "share": target_share[i_row[train_rows]].astype(np.float32),
    }

    class SoftmaxFit(keras.Model):
        """model.fit of the softmax towers: `net` (build_softmax_model) with a learned temperature;
        each batch of targets is scored against itself plus `sampled_negatives` uniform catalogue
        rows, with the logQ correction log E[j] = log(B * share[j] + S / n_items)."""

        def __init__(self, net, ix, catalogue_idx, target_share, cfg, **kw):
            super().__init__(**kw)
            self.net = net
            self.user_tower = keras.Model(net.inputs[:3], net.get_layer("v_u").output)
            self.item_tower = keras.Model(net.inputs[3:], net.get_layer("v_m").output)
            self.ix = tf.constant(ix)
            self.catalogue_idx = tf.constant(catalogue_idx, tf.int32)
            self.target_share = tf.constant(target_share, tf.float32)
            self.n_items, self.negatives = len(ix), cfg.sampled_negatives
            self.logq_weight = cfg.logq_weight
            self.log_temperature = tf.Variable(
                np.log(cfg.initial_temperature), dtype=tf.float32, name="log_temperature"
            )
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.built = True

        def batch_loss(self, x, training):
            c_rows = tf.convert_to_tensor(x["item_row"], tf.int32)
            b = tf.shape(c_rows)[0]
            negatives = tf.random.uniform([self.negatives], 0, self.n_items, dtype=tf.int32, seed=1)
            c_rows = tf.concat([c_rows, negatives], 0)
            share = tf.concat([x["share"], tf.gather(self.target_share, negatives)], 0)
            expected = tf.cast(b, tf.float32) * share + self.negatives / self.n_items
            vu = self.user_tower([x["x_u"], x["user_index"], x["history"]], training=training)
            vm = self.item_tower(
                [
                    tf.concat([x["x_m"], tf.gather(self.ix, negatives)], 0),
                    tf.concat([x["item_index"], tf.gather(self.catalogue_idx, negatives)], 0),
                ],
                training=training,
            )
            log_expected = self.logq_weight * tf.math.log(tf.maximum(expected, 1e-12))
            return sampled_softmax_loss(vu, vm, c_rows, log_expected, self.log_temperature)

        def train_step(self, data):
            weights = [*self.net.trainable_weights, self.log_temperature]
            with tf.GradientTape() as tape:
                loss = self.batch_loss(data, training=True)
                total = loss + tf.add_n([tf.constant(0.0), *self.net.losses])
            self.optimizer.apply(tape.gradient(total, weights), weights)
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

        @property
        def metrics(self):
            return [self.loss_tracker]

    keras.utils.set_random_seed(cfg.seed)
    tf.config.experimental.enable_op_determinism()
    net = build_softmax_model(
        len(ucols), len(icols), len(vocab.user_ids) + 1, len(vocab.item_ids) + 1, cfg
    )
    model = SoftmaxFit(net, ix, catalogue_idx, target_share, cfg)
    # jit_compile=False: fit_softmax_towers' step is a plain tf.function, not XLA-compiled
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate), jit_compile=False
    )
    first = {k: v[: cfg.batch_size] for k, v in x.items()}
    first_loss = float(model.batch_loss(first, training=False))
    return model, x, first_loss


def bench_training(
    sizes: list[int],
    users: int = TRAINING_USERS,
    items: int = TRAINING_ITEMS,
    batch_size: int = TRAINING_BATCH_SIZE,
    seed: int = SEED,
    repeat: int = 1,
    models: tuple[str, ...] = TRAINING_MODELS,
    softmax_sizes: list[int] | tuple[int, ...] = TRAINING_SOFTMAX_EXAMPLES,
) -> dict:
    """Each model's two methods at each of its numbers of examples (`sizes` for classification,
    `softmax_sizes` for softmax: interactions, each a positive, so one training example), each in a
    child process, alternated `repeat` times (the median run of each is reported: a shared machine's
    speed drifts between runs)."""
    runs, ratios = [], []
    for model in models:
        methods = MODEL_METHODS[model]
        write = write_data if model == "classification" else write_softmax_data
        for examples in sizes if model == "classification" else softmax_sizes:
            with tempfile.TemporaryDirectory() as tmp:
                write(Path(tmp), users, items, examples, seed)
                tries: dict[str, list[dict]] = {m: [] for m in methods}
                for method in [m for _ in range(repeat) for m in methods]:
                    tries[method].append(run_child(method, Path(tmp), batch_size))
            medians = {}
            for method, done in tries.items():
                medians[method] = sorted(done, key=lambda r: r["seconds"])[len(done) // 2]
                runs.append(
                    {
                        **medians[method],
                        "model": model,
                        "size": examples,
                        "all_seconds": [round(r["seconds"], 2) for r in done],
                    }
                )
            stream, reference = methods[1], methods[0]
            ratios.append(
                {
                    "model": model,
                    "size": examples,
                    "ratio": f"{stream}/{reference} examples/s",
                    "value": medians[stream]["examples_per_second"]
                    / medians[reference]["examples_per_second"],
                }
            )
    return {
        "users": users,
        "items": items,
        "batch_size": batch_size,
        "repeat": repeat,
        "models": list(models),
        "runs": runs,
        "ratios": ratios,
    }


def run_child(method: str, folder: Path, batch_size: int) -> dict:
    """run_method in a child process of its own: its figures, from the last line it prints."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "recsys_cli.bench.training",
            method,
            "--folder",
            str(folder),
            "--batch-size",
            str(batch_size),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench training {method} failed: {proc.stderr[-ERROR_TAIL_CHARS:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_training(report: dict) -> None:
    print(
        f"one epoch of the two towers (256-128-32 each), batch {report['batch_size']}, "
        f"{report['users']:,} users x {report['items']:,} items of random features; "
        f"median of {report['repeat']} alternated runs"
    )
    if "softmax" in report.get("models", ()):
        print(
            "softmax: an example is a positive interaction, scored against the batch's targets and "
            "the sampled uniform negatives; its in-memory reference is model.fit on every example's "
            "inputs as arrays"
        )
    print(
        f"{'examples':>11}  {'method':<18}{'seconds':>9}{'examples/s':>12}{'peak RSS MB':>13}"
        f"{'vs in-memory':>14}"
    )
    groups: dict[tuple, dict] = {}
    for r in report["runs"]:
        groups.setdefault((r.get("model"), r.get("size", r["examples"])), {})[r["method"]] = r
    for (model, size), runs in groups.items():
        methods = MODEL_METHODS[model] if model else METHODS
        for name in methods:
            r = runs[name]
            speed = r["examples_per_second"] / runs[methods[0]]["examples_per_second"]
            print(
                f"{size:>11,}  {name:<18}{r['seconds']:>9.1f}{r['examples_per_second']:>12,.0f}"
                f"{r['peak_rss_mb']:>13,.0f}{speed:>13.2f}x"
            )
    for ratio in report.get("ratios", ()):
        print(f"{ratio['size']:>11,}  {ratio['ratio']}: {ratio['value']:.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one training benchmark method, in this process")
    p.add_argument("method", choices=METHODS + SOFTMAX_METHODS)
    p.add_argument("--folder", type=Path, required=True)
    p.add_argument("--batch-size", type=int, default=TRAINING_BATCH_SIZE)
    a = p.parse_args(argv)
    print(json.dumps(run_method(a.method, a.folder, a.batch_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
