"""Step 8: Spark job retrieving each user's candidates (similar to recent, top in genres, top in country),
one row per user: user_id, item_id (ids), reasons (each candidate's)."""

from jobs.build_features import load_inputs, write
from jobs.common import JobContext, main_for
from recsys_core import columns as C
from recsys_core.retrieval import retrieve
from recsys_core.spark import spark_session


def body(ctx: JobContext) -> dict:
    spark = spark_session(ctx.config.spark, "recsys-retrieve-candidates")
    t = load_inputs(spark, ctx)
    neighbors = spark.read.parquet(str(ctx.lake.require(C.ITEM_NEIGHBORS, ctx.ds)))
    candidates = retrieve(
        t[C.USERS], t[C.ITEMS], t[C.INTERACTIONS], neighbors, ctx.config.retrieval, ctx.config.ranking.top_n
    )
    rows = write(ctx, candidates, C.CANDIDATES)  # one row per user, already partitioned by user
    return {"rows_in": {C.USERS: t[C.USERS].count()}, "rows_out": {C.CANDIDATES: rows}}


if __name__ == "__main__":
    main_for("retrieve_candidates", body)
