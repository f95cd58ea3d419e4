"""Training examples as a stream: (user row, item row, target, split) in chunks, fed to Keras by tf.data.

An example names its user and item by their row in the feature matrices instead of copying the
features, so 50,000,000 interactions with 4 negatives each are 250,000,000 rows of 10 bytes on disk,
read a few row groups at a time; the features are gathered per batch inside the tf.data pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recsys_core.errors import RecsysError

USER_POS, ITEM_POS, TARGET, VALIDATION = "user_pos", "item_pos", "target", "validation"
EXAMPLES_SCHEMA = pa.schema(
    [
        (USER_POS, pa.int32()),
        (ITEM_POS, pa.int32()),
        (TARGET, pa.float32()),
        (VALIDATION, pa.bool_()),
    ]
)
ROW_GROUP_ROWS = 1 << 20  # examples per row group: the unit ParquetExamples reads and shuffles
MIX_ROW_GROUPS = (
    4  # row groups read and shuffled together: batches mix users from several parts of the file
)

# one example in a batch file: user row and item row (int32), target (float32), 4 bytes each
EXAMPLE_BYTES = 12
READ_BUFFER_BYTES = 1 << 22  # TensorFlow reads a batch file in large sequential reads of this size

Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]  # user positions, item positions, raw targets


class ArrayExamples:
    """Examples held in memory (the offline evaluation and tests): one chunk, reshuffled every epoch."""

    scratch = None  # where training writes its batch files: the system's temporary folder

    def __init__(
        self,
        user_pos: np.ndarray,
        item_pos: np.ndarray,
        targets: np.ndarray,
        validation: np.ndarray,
    ):
        self.user_pos, self.item_pos = np.asarray(user_pos), np.asarray(item_pos)
        self.targets, self.validation = np.asarray(targets), np.asarray(validation, dtype=bool)

    def chunks(self, validation: bool, seed: int | None = None) -> Iterator[Chunk]:
        rows = np.flatnonzero(self.validation == validation)
        if seed is not None:
            rows = rows[np.random.default_rng(seed).permutation(len(rows))]
        if len(rows):
            yield self.user_pos[rows], self.item_pos[rows], self.targets[rows]


class ParquetExamples:
    """Examples in one Parquet file of EXAMPLES_SCHEMA: read MIX_ROW_GROUPS row groups at a time, in a seeded
    order, shuffled together; memory is bounded by that read, whatever the file's size."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.scratch = self.path.parent  # training's batch files go beside the examples
        self.file = pq.ParquetFile(self.path)

    def chunks(self, validation: bool, seed: int | None = None) -> Iterator[Chunk]:
        groups = np.arange(self.file.num_row_groups)
        rng = np.random.default_rng(seed) if seed is not None else None
        if rng is not None:
            groups = rng.permutation(groups)
        for start in range(0, len(groups), MIX_ROW_GROUPS):
            table = self.file.read_row_groups(groups[start : start + MIX_ROW_GROUPS].tolist())
            keep = np.asarray(table.column(VALIDATION).to_numpy(zero_copy_only=False) == validation)
            rows = np.flatnonzero(keep)
            if rng is not None:
                rows = rows[rng.permutation(len(rows))]
            if len(rows):
                yield tuple(table.column(c).to_numpy()[rows] for c in (USER_POS, ITEM_POS, TARGET))


@dataclass(frozen=True)
class Summary:
    """One pass over the training examples: how often each user and item row occurs (the weights of
    the feature scalers) and the targets' range."""

    rows: int
    validation_rows: int
    user_counts: np.ndarray
    item_counts: np.ndarray
    target_min: float
    target_max: float
    target_mean: float


def summarise(source, n_users: int, n_items: int) -> Summary:
    users, items = np.zeros(n_users, np.int64), np.zeros(n_items, np.int64)
    rows, total, lo, hi = 0, 0.0, np.inf, -np.inf
    for u, i, y in source.chunks(validation=False):
        if (u < 0).any() or (u >= n_users).any() or (i < 0).any() or (i >= n_items).any():
            raise RecsysError(
                f"training examples refer to feature rows outside {n_users} users x {n_items} items"
            )
        users += np.bincount(u, minlength=n_users)
        items += np.bincount(i, minlength=n_items)
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise RecsysError("target training data contains NaN or infinite values")
        rows, total, lo, hi = rows + len(y), total + y.sum(), min(lo, y.min()), max(hi, y.max())
    validation_rows = sum(len(y) for _, _, y in source.chunks(validation=True))
    if rows == 0:
        raise RecsysError("no training examples: nothing to train on")
    return Summary(rows, validation_rows, users, items, float(lo), float(hi), total / rows)


def write_batches(
    chunks: Iterable[Chunk],
    path: str | Path,
    batch_size: int,
    target: Callable[[np.ndarray], np.ndarray],
) -> tuple[int, Chunk]:
    """Write chunks as fixed-length records of one batch each: batch_size user rows (int32), item rows
    (int32), then targets (float32, after `target`). Batches run across chunk boundaries; returns the
    number of records and the last short batch, which does not fill a record."""
    carry: Chunk = (np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32))
    records = 0
    with open(path, "wb") as out:
        for u, i, y in chunks:
            u, i, y = (
                np.concatenate([c, np.asarray(v, dtype=c.dtype)])
                for c, v in zip(carry, (u, i, target(y)), strict=True)
            )
            full = len(u) // batch_size * batch_size
            if full:
                block = np.concatenate(
                    [
                        u[:full].reshape(-1, batch_size),
                        i[:full].reshape(-1, batch_size),
                        y[:full].view(np.int32).reshape(-1, batch_size),
                    ],
                    axis=1,
                )
                block.tofile(out)
                records += len(block)
            carry = (u[full:], i[full:], y[full:])
    return records, carry


def tf_dataset(
    source,
    validation: bool,
    path: str | Path,
    user_x,
    item_x,
    target: Callable[[np.ndarray], np.ndarray],
    batch_size: int,
    seed: int | None,
):
    """((x_u, x_m), y) batches of one pass over the examples (shuffled as the chunks come when seeded),
    features gathered from the scaled matrices (arrays or tensors) by row position.

    The pass is first written to `path` as fixed-length records of one batch each, which TensorFlow
    reads natively (FixedLengthRecordDataset): no Python runs while Keras trains."""
    import tensorflow as tf

    records, tail = write_batches(source.chunks(validation, seed), path, batch_size, target)
    users, items = tf.constant(user_x, tf.float32), tf.constant(item_x, tf.float32)

    def decode(record):
        v = tf.io.decode_raw(record, tf.int32)
        return (
            v[:batch_size],
            v[batch_size : 2 * batch_size],
            tf.bitcast(v[2 * batch_size :], tf.float32),
        )

    ds = tf.data.FixedLengthRecordDataset(
        str(path), EXAMPLE_BYTES * batch_size, buffer_size=READ_BUFFER_BYTES
    ).map(decode)
    ds = ds.apply(tf.data.experimental.assert_cardinality(records))
    if len(tail[0]):
        ds = ds.concatenate(tf.data.Dataset.from_tensors(tail))
    return ds.map(
        lambda u, i, y: ((tf.gather(users, u), tf.gather(items, i)), y),
        num_parallel_calls=tf.data.AUTOTUNE,
    ).prefetch(tf.data.AUTOTUNE)


def write_examples(
    chunks: Iterable[Chunk], path: str | Path, validation_share: float, seed: int
) -> int:
    """Write (user_pos, item_pos, target) chunks to one Parquet file, each chunk shuffled and each row
    flagged for validation with probability `validation_share` (seeded per chunk). Returns the rows."""
    rows = 0
    with pq.ParquetWriter(path, EXAMPLES_SCHEMA) as writer:
        for index, (u, i, y) in enumerate(chunks):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
            order = rng.permutation(len(u))
            table = pa.table(
                {
                    USER_POS: u[order].astype(np.int32),
                    ITEM_POS: i[order].astype(np.int32),
                    TARGET: np.asarray(y, dtype=np.float32)[order],
                    VALIDATION: rng.random(len(u)) < validation_share,
                },
                schema=EXAMPLES_SCHEMA,
            )
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            rows += len(u)
    return rows
