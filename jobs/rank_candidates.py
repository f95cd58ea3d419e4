"""Step 9: v_u once per user, then each user's candidates scored in Spark and the top N kept."""

import pyarrow.dataset as pads
import pyarrow.parquet as pq
from pyspark.sql import functions as F

from jobs.build_features import write
from jobs.common import JobContext, main_for
from jobs.embed_items import embedding_table, load_model, read_embeddings
from recsys_core import columns as C
from recsys_core.features import feature_columns
from recsys_core.ranking import prediction, rank_candidates
from recsys_core.spark import spark_session

BATCH_ROWS = 65_536


def embed_users(ctx: JobContext, model) -> int:
    """The user tower over the user features, batch by batch into the user_embeddings partition."""
    source = pads.dataset(ctx.lake.require(C.USER_FEATURES, ctx.ds))
    features = feature_columns(source.schema.names, C.USER_ID)
    stage = ctx.lake.staging(C.USER_EMBEDDINGS, ctx.ds)
    stage.mkdir(parents=True, exist_ok=True)
    rows, writer = 0, None
    try:
        for batch in source.to_batches(batch_size=BATCH_ROWS):
            frame = batch.to_pandas()
            table = embedding_table(frame[C.USER_ID].to_numpy(), C.USER_ID, model.embed_users(frame[features]))
            writer = writer or pq.ParquetWriter(stage / "part-00000.parquet", table.schema)
            writer.write_table(table)
            rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    ctx.lake.commit(stage, C.USER_EMBEDDINGS, ctx.ds)
    return rows


def body(ctx: JobContext) -> dict:
    model, version = load_model(ctx)
    users = embed_users(ctx, model)
    item_ids, item_vectors = read_embeddings(ctx, C.ITEM_EMBEDDINGS, C.ITEM_ID)
    user_ids, user_vectors = read_embeddings(ctx, C.USER_EMBEDDINGS, C.USER_ID)
    spark = spark_session(ctx.config.spark, "recsys-rank-candidates")
    candidates = spark.read.parquet(str(ctx.lake.require(C.CANDIDATES, ctx.ds)))
    top_n = ctx.config.ranking.top_n
    ranked = rank_candidates(candidates, user_ids, user_vectors, item_ids, item_vectors, top_n).select(
        C.USER_ID, F.col(C.RANK).cast("int").alias(C.RANK), C.ITEM_ID, C.SCORE, C.REASON,
        prediction(F.col(C.SCORE), model.output_transform()).alias(C.PREDICTED_RATING),
        F.lit(version).alias(C.MODEL_VERSION), F.lit(ctx.run_id).alias(C.RUN_ID),
    )
    rows = write(ctx, ranked, C.RECOMMENDATIONS)
    return {
        "rows_in": {C.CANDIDATES: candidates.count(), C.USERS: users},
        "rows_out": {C.USER_EMBEDDINGS: users, C.RECOMMENDATIONS: rows},
        "model_version": version,
    }


if __name__ == "__main__":
    main_for("rank_candidates", body)
