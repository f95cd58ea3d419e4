"""Step 2: build user and item features with Spark and write them to the lake partition of ds."""

from jobs.common import JobContext, main_for
from recsys_core import columns as C
from recsys_core import features
from recsys_core.holdout import split_holdout
from recsys_core.spark import spark_session

HOLDOUT_COLUMNS = [C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP]


def load_inputs(spark, ctx: JobContext) -> dict:
    """The validated input snapshots of ds as Spark DataFrames (already cast to their contracts)."""
    return {t: spark.read.parquet(str(ctx.input_path(t))) for t in C.INPUT_TABLES}


def write(ctx: JobContext, df, dataset: str) -> int:
    stage = ctx.lake.staging(dataset, ctx.ds)
    df.write.parquet(str(stage))
    ctx.lake.commit(stage, dataset, ctx.ds)
    return df.sparkSession.read.parquet(str(ctx.lake.partition(dataset, ctx.ds))).count()


def body(ctx: JobContext) -> dict:
    spark = spark_session(ctx.config.spark, "recsys-build-features")
    t = load_inputs(spark, ctx)
    genres = features.genre_vocabulary(t[C.ITEMS])
    users = features.user_features(t[C.USERS], t[C.INTERACTIONS], t[C.ITEMS], genres)
    items = features.item_features(t[C.ITEMS], t[C.INTERACTIONS], genres)
    # the model gate's slice: held-out rows, and their users' features from what remains for training
    train_view, held_out = split_holdout(t[C.INTERACTIONS], ctx.config.evaluation.holdout_user_share)
    held_users = t[C.USERS].join(held_out.select(C.USER_ID).distinct(), C.USER_ID, "left_semi")
    held_features = features.user_features(held_users, train_view, t[C.ITEMS], genres)
    return {
        "rows_in": {name: df.count() for name, df in t.items()},
        "rows_out": {
            C.USER_FEATURES: write(ctx, users.orderBy(C.USER_ID), C.USER_FEATURES),
            C.ITEM_FEATURES: write(ctx, items.orderBy(C.ITEM_ID), C.ITEM_FEATURES),
            C.HOLDOUT: write(ctx, held_out.select(*HOLDOUT_COLUMNS).orderBy(C.USER_ID, C.ITEM_ID), C.HOLDOUT),
            C.HOLDOUT_USER_FEATURES: write(ctx, held_features.orderBy(C.USER_ID), C.HOLDOUT_USER_FEATURES),
        },
        "genres": len(genres),
    }


if __name__ == "__main__":
    main_for("build_features", body)
