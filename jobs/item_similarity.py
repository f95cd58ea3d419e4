"""Step 7: Spark job writing each item's K nearest items by squared embedding distance."""

from jobs.build_features import write
from jobs.common import JobContext, main_for
from jobs.embed_items import read_embeddings
from recsys_core import columns as C
from recsys_core.similarity import neighbors_dataframe
from recsys_core.spark import spark_session


def body(ctx: JobContext) -> dict:
    ids, vectors = read_embeddings(ctx, C.ITEM_EMBEDDINGS, C.ITEM_ID)
    spark = spark_session(ctx.config.spark, "recsys-item-similarity")
    neighbors = neighbors_dataframe(spark, ids, vectors, ctx.config.similarity.k)
    rows = write(ctx, neighbors, C.ITEM_NEIGHBORS)
    return {"rows_in": {C.ITEM_EMBEDDINGS: len(ids)}, "rows_out": {C.ITEM_NEIGHBORS: rows}}


if __name__ == "__main__":
    main_for("item_similarity", body)
