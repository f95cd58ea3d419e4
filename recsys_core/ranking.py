"""Ranking: score each user's candidates by v_u . v_m and keep the top N (SEED.md "Ranking"), in Spark.

v_u is computed once per user beforehand (the user_embeddings table) and joined to the user's
candidates; the item embeddings are broadcast; each Arrow batch is scored with one vectorised dot
product (mapInArrow), and a window keeps each user's top N. Nothing is collected to the driver.
"""

from __future__ import annotations

import numpy as np
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from recsys_core import columns as C
from recsys_core.errors import RecsysError


def _check_known(candidates: DataFrame, user_embeddings: DataFrame, items: DataFrame) -> None:
    users_missing = candidates.join(user_embeddings, C.USER_ID, "left_anti").select(C.USER_ID).distinct()
    items_missing = candidates.join(F.broadcast(items), C.ITEM_ID, "left_anti").select(C.ITEM_ID).distinct()
    missing_u = sorted(r[0] for r in users_missing.limit(5).collect())
    missing_i = sorted(r[0] for r in items_missing.limit(5).collect())
    if missing_u or missing_i:
        raise RecsysError(f"candidates without embeddings: users {missing_u}, items {missing_i}")


def rank_candidates(
    candidates: DataFrame,
    user_embeddings: DataFrame,
    item_ids: np.ndarray,
    item_embeddings: np.ndarray,
    top_n: int,
) -> DataFrame:
    """Top `top_n` candidates per user by score, highest first (ties: lower item_id first).

    `candidates` has user_id, item_id and reasons; `user_embeddings` has user_id and embedding
    (v_u, computed once per user). Returns user_id, rank (1..), item_id, score, reason.
    """
    spark = candidates.sparkSession
    order = np.argsort(item_ids, kind="stable")
    ids = np.asarray(item_ids, dtype=np.int64)[order]
    vectors = np.ascontiguousarray(item_embeddings, dtype=np.float32)[order]
    _check_known(candidates, user_embeddings, spark.createDataFrame([(int(i),) for i in ids], f"{C.ITEM_ID} long"))
    shared = spark.sparkContext.broadcast((ids, vectors))

    def score(batches):
        import pyarrow as pa

        all_ids, item_vectors = shared.value
        for batch in batches:
            users = batch.column(C.EMBEDDING)
            dim = len(users[0]) if len(users) else item_vectors.shape[1]
            u = users.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
            pos = np.searchsorted(all_ids, batch.column(C.ITEM_ID).to_numpy())
            scores = np.einsum("ij,ij->i", u, item_vectors[pos]).astype(np.float64)
            yield pa.RecordBatch.from_arrays(
                [batch.column(C.USER_ID), batch.column(C.ITEM_ID), batch.column(C.REASONS), pa.array(scores)],
                names=[C.USER_ID, C.ITEM_ID, C.REASONS, C.SCORE],
            )

    joined = candidates.select(C.USER_ID, C.ITEM_ID, C.REASONS).join(
        user_embeddings.select(C.USER_ID, C.EMBEDDING), C.USER_ID
    )
    schema = f"{C.USER_ID} long, {C.ITEM_ID} long, {C.REASONS} array<string>, {C.SCORE} double"
    scored = joined.mapInArrow(score, schema)
    best = Window.partitionBy(C.USER_ID).orderBy(F.desc(C.SCORE), F.asc(C.ITEM_ID))
    return (
        scored.withColumn(C.RANK, F.row_number().over(best))
        .where(F.col(C.RANK) <= top_n)
        .select(C.USER_ID, C.RANK, C.ITEM_ID, C.SCORE, F.array_join(C.REASONS, "; ").alias(C.REASON))
    )


def prediction(score: Column, transform: tuple[float, float, bool]) -> Column:
    """The model's prediction from its score as a Spark expression (TwoTowerModel.output_transform)."""
    slope, intercept, sigmoid = transform
    linear = F.lit(float(slope)) * score + F.lit(float(intercept))
    return (F.lit(1.0) / (F.lit(1.0) + F.exp(-linear))) if sigmoid else linear
