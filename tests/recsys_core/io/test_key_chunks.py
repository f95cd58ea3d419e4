"""key_chunks: every row once, every key's rows in one chunk, about rows_per_chunk rows a chunk, no spill left."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from recsys_core.io.key_chunks import buckets_of, chunk_count, key_chunks


def parquet(folder, *tables: pa.Table):
    folder.mkdir()
    for i, t in enumerate(tables):
        pq.write_table(t, folder / f"part-{i}.parquet", row_group_size=97)  # many small batches
    return pads.dataset(folder, format="parquet")


def keyed(rows: int, keys: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {"user_id": rng.integers(0, keys, rows) * 1000, "row": np.arange(rows)}
    )  # ids share a stride


def test_every_row_once_and_each_key_in_one_chunk(tmp_path):
    data = parquet(tmp_path / "in", keyed(5000, 300))
    spill = tmp_path / "spill"
    spill.mkdir()
    chunks = list(key_chunks(data, "user_id", 1000, spill_root=spill))
    assert (
        3 <= len(chunks) <= chunk_count(5000, 1000) == 5
    )  # buckets by hash: about, not exactly, even
    rows = np.sort(np.concatenate([c["row"].to_numpy() for c in chunks]))
    assert np.array_equal(rows, np.arange(5000))
    owners = pd.concat(
        [c[["user_id"]].assign(chunk=i) for i, c in enumerate(chunks)]
    ).drop_duplicates()
    assert owners["user_id"].is_unique  # no key split between chunks
    assert list(spill.iterdir()) == []  # spill files removed


def test_null_keys_do_not_move_a_key_between_chunks(tmp_path):
    with_nulls = pa.table(
        {"user_id": pa.array([7, None, 8, 9] * 50, pa.int64()), "row": np.arange(200)}
    )
    without = pa.table(
        {"user_id": pa.array([7, 8, 9, 10] * 50, pa.int64()), "row": np.arange(200, 400)}
    )
    chunks = list(key_chunks(parquet(tmp_path / "in", with_nulls, without), "user_id", 50))
    owner = {}
    for i, chunk in enumerate(chunks):
        for key in chunk["user_id"].fillna(-1).unique():
            assert owner.setdefault(key, i) == i, f"key {key} in chunks {owner[key]} and {i}"
    assert sum(len(c) for c in chunks) == 400


def test_string_keys_are_bucketed_by_value():
    column = pa.array(["a", "b", "a", None, "b"])
    b = buckets_of(column, 4)
    assert b[0] == b[2] and b[1] == b[4]


def test_small_table_is_one_chunk_and_empty_table_one_empty_chunk(tmp_path):
    small = keyed(100, 10)
    [chunk] = key_chunks(parquet(tmp_path / "small", small), "user_id", 1000)
    assert chunk.equals(small.to_pandas())
    [empty] = key_chunks(parquet(tmp_path / "empty", small.slice(0, 0)), "user_id", 1000)
    assert len(empty) == 0 and list(empty.columns) == ["user_id", "row"]


@pytest.mark.parametrize("key", [None, "absent"])
def test_without_the_key_rows_are_cut_by_position(tmp_path, key):
    chunks = list(key_chunks(parquet(tmp_path / "in", keyed(1000, 5)), key, 250))
    assert [len(c) for c in chunks] == [250] * 4  # 5 keys could never make 4 even chunks
