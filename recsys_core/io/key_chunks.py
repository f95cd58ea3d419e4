"""A large table cut into chunks by a key column, so every row of one key lands in the same chunk:
checks that compare rows of one key (uniqueness) stay exact chunk by chunk, in bounded memory.

One pass reads the Parquet dataset batch by batch and appends each batch's rows to the Arrow IPC file
of their bucket (a hash of the key); the chunks are then read back one at a time."""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

GOLDEN = np.uint64(
    0x9E3779B97F4A7C15
)  # Fibonacci hashing: spreads ids that share a stride (all even, ...)
# the bucket comes from the product's high 32 bits, which depend on every bit of the key (its low
# bits depend only on the key's low bits)
HASH_SHIFT = np.uint64(32)


def chunk_count(rows: int, rows_per_chunk: int) -> int:
    return max(1, math.ceil(rows / rows_per_chunk))


def buckets_of(column: pa.Array | pa.ChunkedArray, buckets: int) -> np.ndarray:
    """The bucket of each row's key, equal for equal keys whatever the batch (nulls share one bucket)."""
    if pa.types.is_integer(
        column.type
    ):  # not via pandas: a batch holding a null would turn ints to floats
        keys = np.asarray(pc.fill_null(column, 0).to_numpy(zero_copy_only=False)).astype(np.uint64)
        with np.errstate(over="ignore"):
            return ((keys * GOLDEN) >> HASH_SHIFT) % np.uint64(buckets)
    return pd.util.hash_array(np.asarray(column.to_pandas(), dtype=object)) % np.uint64(buckets)


def spill_by_key(
    batches: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    key: str | None,
    buckets: int,
    folder: Path,
) -> list[Path]:
    """Write the rows into `buckets` Arrow IPC files under folder, by key (by row when key is None)."""
    paths = [folder / f"chunk-{b:04d}.arrow" for b in range(buckets)]
    writers = [pa.ipc.new_file(str(p), schema) for p in paths]
    seen = 0
    try:
        for batch in batches:
            if key is None:
                bucket = (np.arange(seen, seen + batch.num_rows) % buckets).astype(np.uint64)
            else:
                bucket = buckets_of(batch.column(key), buckets)
            seen += batch.num_rows
            order = np.argsort(bucket, kind="stable")
            ordered = batch.take(pa.array(order))
            bounds = np.searchsorted(bucket[order], np.arange(buckets + 1, dtype=np.uint64))
            for b, writer in enumerate(writers):
                if bounds[b + 1] > bounds[b]:
                    writer.write_batch(ordered.slice(bounds[b], bounds[b + 1] - bounds[b]))
    finally:
        for writer in writers:
            writer.close()
    return paths


def _rows(path: Path) -> int:
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_file(source)
        return sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))


def _read(path: Path) -> pd.DataFrame:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all().to_pandas()


def key_chunks(
    dataset, key: str | None, rows_per_chunk: int, spill_root: Path | None = None
) -> Iterator[pd.DataFrame]:
    """The rows of a pyarrow dataset as pandas frames of about rows_per_chunk rows, every key's rows in one
    frame (any cut when key is None or absent). A table that fits in one chunk is read as a whole; an empty
    one yields one empty frame, so checks on the whole table still see it."""
    rows = dataset.count_rows()
    buckets = chunk_count(rows, rows_per_chunk)
    if buckets == 1:
        yield dataset.to_table().to_pandas()
        return
    key = key if key in dataset.schema.names else None
    folder = Path(tempfile.mkdtemp(prefix="key-chunks-", dir=spill_root))
    try:
        paths = spill_by_key(dataset.to_batches(), dataset.schema, key, buckets, folder)
        for path in paths:
            if path.stat().st_size and _rows(path):  # a bucket no key fell in holds only the schema
                yield _read(
                    path
                )  # not kept in a local: the caller drops the chunk before the next is read
            path.unlink()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
