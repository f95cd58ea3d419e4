"""Nearest items by squared distance between item embeddings (SEED.md "Finding related items")."""

from __future__ import annotations

import numpy as np

GROUP = 64  # columns per group of the two-stage top-k selection
PAD = np.float32(1e30)  # |x|^2 of padding columns: never among the nearest
QUERY_BLOCK = 1024  # query rows per BLAS product: a large product keeps BLAS efficient
# cap of the score buffer: with a large catalogue the block shrinks instead of the memory growing
SCORE_MEMORY_MB = 256
# query items per Spark task; the kernel takes them as one block unless SCORE_MEMORY_MB caps it
TASK_QUERIES = 2048
BYTES_PER_MB = 2**20
FLOAT32_BYTES = 4  # one score in the buffer
BLAS_WIDTH_MULTIPLE = 8  # BLAS is faster on widths that are multiples of 8


def top_k_neighbors(
    embeddings: np.ndarray,
    k: int,
    queries: np.ndarray | None = None,
    block: int = QUERY_BLOCK,
    memory_mb: int = SCORE_MEMORY_MB,
) -> tuple[np.ndarray, np.ndarray]:
    """For each query row (default: every row), the k nearest other rows of `embeddings`.

    Returns (indices, squared_distances), each (n_queries, min(k, n - 1)), sorted by distance and
    then by index so ties are broken deterministically. A row is never its own neighbor.

    Per block of `block` query rows: one BLAS product of augmented matrices gives
    |x|^2 - 2 q.x for every item x (the squared distance minus the query's own |q|^2) into a
    reused buffer; then a two-stage selection finds the top k without partitioning whole rows.
    Columns are dealt into n / GROUP groups (column c is in group c mod groups, so a group's
    minimum is an element-wise minimum of GROUP contiguous slices), the k groups with the smallest
    minimum are kept, and the top k is taken among their k x GROUP values. If a group left out could
    hold a value as small as the k-th (only with ties), that row is redone exactly on its full row.
    Memory is bounded by the score buffer: `block` query rows at most, fewer when block x n float32
    scores would exceed `memory_mb` (a million items: 64 rows, 256 MB).
    """
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, dim = emb.shape
    q_rows = np.arange(n) if queries is None else np.asarray(queries, dtype=np.int64)
    kk = min(k, n - 1)
    idx_out = np.empty((len(q_rows), max(kk, 0)), dtype=np.int64)
    d2_out = np.empty((len(q_rows), max(kk, 0)), dtype=np.float32)
    if kk <= 0:
        return idx_out, d2_out
    norms = np.einsum("ij,ij->i", emb, emb)
    groups = -(-n // GROUP)
    block = max(1, min(block, memory_mb * BYTES_PER_MB // (FLOAT32_BYTES * groups * GROUP)))
    width = -(-(dim + 1) // BLAS_WIDTH_MULTIPLE) * BLAS_WIDTH_MULTIPLE
    # items as [x, |x|^2, 0...], padded to whole groups; queries as [-2q, 1, 0...]: product |x|^2 - 2 q.x
    items = np.zeros((groups * GROUP, width), dtype=np.float32)
    items[:n, :dim], items[:n, dim], items[n:, dim] = emb, norms, PAD
    q = np.zeros((min(block, len(q_rows)), width), dtype=np.float32)
    buffer = np.empty((len(q), groups * GROUP), dtype=np.float32)
    for start in range(0, len(q_rows), block):
        rows = q_rows[start : start + block]
        b = len(rows)
        np.multiply(emb[rows], -2.0, out=q[:b, :dim])
        q[:b, dim] = 1.0
        scores = buffer[:b]
        np.matmul(q[:b], items.T, out=scores)
        scores[np.arange(b), rows] = np.inf  # never its own neighbor
        idx, key = _select(scores, kk, groups)
        idx_out[start : start + b] = idx
        d2_out[start : start + b] = np.maximum(key + norms[rows, None], 0.0)
    return idx_out, d2_out


def _select(scores: np.ndarray, k: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """The k smallest values of each row of `scores` (ties: lower column first) and their columns."""
    b = scores.shape[0]
    dealt = scores.reshape(b, GROUP, groups)  # dealt[r, s, g] is column s * groups + g
    group_min = dealt.min(axis=1)
    if groups > k:
        best = np.argpartition(group_min, k, axis=1)
        chosen = best[:, :k]
        next_min = np.take_along_axis(group_min, best[:, k : k + 1], axis=1)[:, 0]
    else:
        chosen = np.broadcast_to(np.arange(groups), (b, groups))
        next_min = np.full(b, np.inf, dtype=np.float32)
    values = np.take_along_axis(dealt, chosen[:, None, :], axis=2).reshape(b, -1)
    columns = (np.arange(GROUP)[:, None] * groups + chosen[:, None, :]).reshape(b, -1)
    part = np.argpartition(values, k - 1, axis=1)[:, :k]
    idx, key = np.take_along_axis(columns, part, axis=1), np.take_along_axis(values, part, axis=1)
    order = np.lexsort((idx, key), axis=1)
    idx, key = np.take_along_axis(idx, order, axis=1), np.take_along_axis(key, order, axis=1)
    # exact unless a tie at the k-th value could have been cut: by the partition among the chosen
    # values, or in a group left out (every value of a group is >= its minimum)
    kth = key[:, -1]
    unsure = (next_min <= kth) | (np.count_nonzero(values <= kth[:, None], axis=1) > k)
    for r in np.flatnonzero(unsure):
        full = np.lexsort((np.arange(scores.shape[1]), scores[r]))[:k]
        idx[r], key[r] = full, scores[r, full]
    return idx, key


def neighbors_dataframe(
    spark, item_ids: np.ndarray, embeddings: np.ndarray, k: int, block: int = TASK_QUERIES
):
    """Spark DataFrame (item_id, rank, neighbor_id, distance): the embeddings are broadcast once and
    each partition computes the neighbors of one block of query items with `top_k_neighbors`."""
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
            spark_task_fault(
                "similarity_task"
            )  # after rows were emitted: a retry must not duplicate them

    partitions = max(1, -(-len(ids) // block))
    return spark.range(0, len(ids), numPartitions=partitions).mapInArrow(compute, schema)
