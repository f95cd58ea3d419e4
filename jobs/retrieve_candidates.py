"""Spark job retrieving each user's candidates (similar to recent, top in genres, top in country),
one row per user: user_id, item_id (ids), reasons (each candidate's)."""

from recsys_core import columns as C
from recsys_core.candidates.retrieval import retrieve
from recsys_core.io import layout as L
from recsys_core.spark import spark_session
from recsys_core.step_runner import JobContext, main_for


def body(ctx: JobContext) -> dict:
    spark = spark_session(ctx.config.spark, "recsys-retrieve-candidates")
    t = ctx.spark_inputs(spark)
    neighbors = spark.read.parquet(str(ctx.lake.require(L.ITEM_NEIGHBORS, ctx.ds)))
    candidates = retrieve(
        t[C.USERS],
        t[C.ITEMS],
        t[C.INTERACTIONS],
        neighbors,
        ctx.config.retrieval,
        ctx.config.ranking.top_n,
    )
    rows = ctx.lake.write_spark(
        candidates, L.CANDIDATES, ctx.ds
    )  # one row per user, already partitioned by user
    return {"rows_in": {C.USERS: ctx.input_rows(C.USERS)}, "rows_out": {L.CANDIDATES: rows}}


if __name__ == "__main__":
    main_for("retrieve_candidates", body)
