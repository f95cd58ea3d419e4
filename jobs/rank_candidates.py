"""The user tower once per user (v_u), then each user's candidates scored in Spark and the top N kept."""

import pyarrow.dataset as pads
from pyspark.sql import functions as F

from recsys_core import columns as C
from recsys_core.candidates.ranking import new_arrivals, prediction, rank_candidates
from recsys_core.features.names import feature_columns
from recsys_core.io import layout as L
from recsys_core.model.embeddings import embedding_table, read_embeddings
from recsys_core.model.history import Sequences
from recsys_core.model.registry import load_serving
from recsys_core.spark import spark_session
from recsys_core.step_runner import JobContext, main_for

BATCH_ROWS = 65_536  # users embedded per batch: memory stays bounded whatever the user count


def embed_users(ctx: JobContext, model) -> int:
    """The user tower over the user features (and, for the softmax towers, each user's recent items
    from every interaction of ds), batch by batch into the user_embeddings partition."""
    source = pads.dataset(ctx.lake.require(L.USER_FEATURES, ctx.ds))
    features = feature_columns(source.schema.names, C.USER_ID)
    sequences = None
    if model.vocabulary is not None:
        columns = [C.USER_ID, C.ITEM_ID, C.TIMESTAMP]
        sequences = Sequences.of(ctx.read_input(C.INTERACTIONS, columns).to_pandas())
    with ctx.lake.parquet_writer(L.USER_EMBEDDINGS, ctx.ds) as out:
        for batch in source.to_batches(batch_size=BATCH_ROWS):
            frame = batch.to_pandas()
            ids = frame[C.USER_ID].to_numpy()
            recent = None
            if sequences is not None:
                recent = sequences.recent(ids, model.vocabulary.history_length)
            out.write(
                embedding_table(ids, C.USER_ID, model.embed_users(frame[features], ids, recent))
            )
    return out.rows


def body(ctx: JobContext) -> dict:
    model, version = load_serving(ctx.lake, ctx.ds)
    users = embed_users(ctx, model)
    item_ids, item_vectors = read_embeddings(ctx.lake, L.ITEM_EMBEDDINGS, ctx.ds, C.ITEM_ID)
    user_ids, user_vectors = read_embeddings(ctx.lake, L.USER_EMBEDDINGS, ctx.ds, C.USER_ID)
    spark = spark_session(ctx.config.spark, "recsys-rank-candidates")
    candidates = spark.read.parquet(str(ctx.lake.require(L.CANDIDATES, ctx.ds)))
    top_n = ctx.config.ranking.top_n
    item_features = ctx.lake.read_table(
        L.ITEM_FEATURES, ctx.ds, [C.ITEM_ID, C.YEAR, C.RATING_COUNT]
    )
    arrivals = new_arrivals(item_features.to_pandas())
    ranked = rank_candidates(
        candidates,
        user_ids,
        user_vectors,
        item_ids,
        item_vectors,
        top_n,
        arrivals,
        ctx.config.retrieval.new_items,
        min(ctx.config.ranking.new_slots, top_n),
    ).select(
        C.USER_ID,
        F.col(C.RANK).cast("int").alias(C.RANK),
        C.ITEM_ID,
        C.SCORE,
        C.REASON,
        prediction(F.col(C.SCORE), model.output_transform()).alias(C.PREDICTED_RATING),
        F.lit(version).alias(C.MODEL_VERSION),
        F.lit(ctx.run_id).alias(C.RUN_ID),
    )
    rows = ctx.lake.write_spark(ranked, L.RECOMMENDATIONS, ctx.ds)
    return {
        "rows_in": {L.CANDIDATES: ctx.lake.count_rows(L.CANDIDATES, ctx.ds), C.USERS: users},
        "rows_out": {L.USER_EMBEDDINGS: users, L.RECOMMENDATIONS: rows},
        "model_version": version,
        "new_arrivals": len(arrivals),
    }


if __name__ == "__main__":
    main_for("rank_candidates", body)
