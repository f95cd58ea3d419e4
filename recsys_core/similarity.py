"""Nearest items by squared distance between item embeddings (SEED.md "Finding related items")."""

from __future__ import annotations

import numpy as np


def top_k_neighbors(
    embeddings: np.ndarray, k: int, queries: np.ndarray | None = None, block: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """For each query row (default: every row), the k nearest other rows of `embeddings`.

    Returns (indices, squared_distances), each (n_queries, min(k, n - 1)), sorted by distance and
    then by index so ties are broken deterministically. A row is never its own neighbour.
    Memory is bounded by `block` query rows at a time: block x n distances.
    """
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = emb.shape[0]
    q_rows = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    kk = min(k, n - 1)
    idx_out = np.empty((len(q_rows), max(kk, 0)), dtype=np.int64)
    d2_out = np.empty((len(q_rows), max(kk, 0)), dtype=np.float32)
    if kk <= 0:
        return idx_out, d2_out
    norms = np.einsum("ij,ij->i", emb, emb)
    for start in range(0, len(q_rows), block):
        rows = q_rows[start : start + block]
        # ||a - b||^2 = |a|^2 + |b|^2 - 2 a.b, one BLAS product per block
        d2 = norms[rows, None] + norms[None, :] - 2.0 * (emb[rows] @ emb.T)
        np.maximum(d2, 0.0, out=d2)
        d2[np.arange(len(rows)), rows] = np.inf
        part = np.argpartition(d2, kk - 1, axis=1)[:, :kk]
        part_d2 = np.take_along_axis(d2, part, axis=1)
        # argpartition keeps an arbitrary subset of the items tied at the k-th distance: in those
        # rows re-pick among everything within that distance, lowest index first on ties
        kth = part_d2.max(axis=1)
        for r in np.flatnonzero(np.count_nonzero(d2 <= kth[:, None], axis=1) > kk):
            within = np.flatnonzero(d2[r] <= kth[r])
            pick = within[np.lexsort((within, d2[r, within]))[:kk]]
            part[r] = pick
            part_d2[r] = d2[r, pick]
        order = np.lexsort((part, part_d2), axis=1)
        idx_out[start : start + len(rows)] = np.take_along_axis(part, order, axis=1)
        d2_out[start : start + len(rows)] = np.take_along_axis(part_d2, order, axis=1)
    return idx_out, d2_out


def neighbors_dataframe(spark, item_ids: np.ndarray, embeddings: np.ndarray, k: int, block: int = 2048):
    """Spark DataFrame (item_id, rank, neighbor_id, distance): the embeddings are broadcast once and
    each partition computes the neighbours of one block of query items with `top_k_neighbors`."""
    import pyarrow as pa

    from recsys_core import columns as C
    from recsys_core.faults import spark_task_fault

    ids = np.asarray(item_ids, dtype=np.int64)
    shared = spark.sparkContext.broadcast((ids, np.asarray(embeddings, dtype=np.float32)))
    schema = f"{C.ITEM_ID} long, {C.RANK} int, {C.NEIGHBOR_ID} long, {C.DISTANCE} double"

    def compute(batches):
        all_ids, emb = shared.value
        for batch in batches:
            rows = batch.column(0).to_numpy()
            idx, d2 = top_k_neighbors(emb, k, queries=rows, block=block)
            width = idx.shape[1]
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(np.repeat(all_ids[rows], width)),
                    pa.array(np.tile(np.arange(1, width + 1, dtype=np.int32), len(rows))),
                    pa.array(all_ids[idx].ravel()),
                    pa.array(d2.ravel().astype(np.float64)),
                ],
                names=[C.ITEM_ID, C.RANK, C.NEIGHBOR_ID, C.DISTANCE],
            )
            spark_task_fault("similarity_task")  # after rows were emitted: a retry must not duplicate them

    partitions = max(1, -(-len(ids) // block))
    return spark.range(0, len(ids), numPartitions=partitions).mapInArrow(compute, schema)
