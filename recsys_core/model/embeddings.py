"""Embedding datasets in the lake: one id column and one fixed-size float32 vector per row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from recsys_core import columns as C
from recsys_core.io.lake import Lake


def embedding_table(ids: np.ndarray, id_column: str, vectors: np.ndarray) -> pa.Table:
    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
    return pa.table(
        {
            id_column: pa.array(ids, pa.int64()),
            C.EMBEDDING: pa.FixedSizeListArray.from_arrays(flat, dim),
        }
    )


def read_embeddings(
    lake: Lake, dataset: str, ds: str, id_column: str
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors as an n x dim matrix) of an embedding partition."""
    t = lake.read_table(dataset, ds)
    col = t.column(C.EMBEDDING).combine_chunks()
    dim = col.type.list_size
    return t.column(id_column).to_numpy(), col.flatten().to_numpy().reshape(-1, dim)
