"""Spark job writing each item's K nearest items by squared embedding distance."""

from recsys_core import columns as C
from recsys_core.candidates.similarity import neighbors_dataframe
from recsys_core.io import layout as L
from recsys_core.model.embeddings import read_embeddings
from recsys_core.spark import spark_session
from recsys_core.step_runner import JobContext, main_for


def body(ctx: JobContext) -> dict:
    ids, vectors = read_embeddings(ctx.lake, L.ITEM_EMBEDDINGS, ctx.ds, C.ITEM_ID)
    spark = spark_session(ctx.config.spark, "recsys-item-similarity")
    neighbors = neighbors_dataframe(spark, ids, vectors, ctx.config.similarity.k)
    rows = ctx.lake.write_spark(neighbors, L.ITEM_NEIGHBORS, ctx.ds)
    return {"rows_in": {L.ITEM_EMBEDDINGS: len(ids)}, "rows_out": {L.ITEM_NEIGHBORS: rows}}


if __name__ == "__main__":
    main_for("item_similarity", body)
