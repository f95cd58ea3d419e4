"""Embedding partitions hold one fixed-size float32 vector per id and read back as a matrix."""

import numpy as np
import pyarrow as pa

from recsys_core.io.lake import Lake
from recsys_core.model.embeddings import embedding_table, read_embeddings


def test_embeddings_round_trip_through_the_lake_as_float32_rows(tmp_path):
    ids = np.array([30, 10, 20])
    vectors = np.array([[0.6, 0.8], [1.0, 0.0], [0.0, -1.0]])
    table = embedding_table(ids, "item_id", vectors)
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 2)
    Lake(tmp_path).write_table(table, "item_embeddings", "2026-01-31")
    got_ids, got = read_embeddings(Lake(tmp_path), "item_embeddings", "2026-01-31", "item_id")
    assert got_ids.tolist() == [30, 10, 20]
    assert got.dtype == np.float32 and got.shape == (3, 2)
    np.testing.assert_array_equal(got, vectors.astype(np.float32))
