"""Build user and item features with Spark and write them to the lake partition of ds."""

from recsys_core import columns as C
from recsys_core.features import build as features
from recsys_core.features.holdout import split_holdout, training_popularity
from recsys_core.io import layout as L
from recsys_core.spark import spark_session
from recsys_core.step_runner import JobContext, main_for

HOLDOUT_COLUMNS = [C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP]


def body(ctx: JobContext) -> dict:
    spark = spark_session(ctx.config.spark, "recsys-build-features")
    t = ctx.spark_inputs(spark)
    genres = features.genre_vocabulary(t[C.ITEMS])
    users = features.user_features(t[C.USERS], t[C.INTERACTIONS], t[C.ITEMS], genres)
    items = features.item_features(t[C.ITEMS], t[C.INTERACTIONS], genres)
    # the model gate's slice: held-out rows, and their users' features from what remains for training
    # (the items' popularity without the held-out rows, as the training data has it)
    slice_train, held_out = split_holdout(
        t[C.INTERACTIONS], ctx.config.evaluation.holdout_user_share
    )
    held_users = t[C.USERS].join(held_out.select(C.USER_ID).distinct(), C.USER_ID, "left_semi")
    popularity = training_popularity(t[C.INTERACTIONS], held_out)
    held_features = features.user_features(held_users, slice_train, t[C.ITEMS], genres, popularity)
    return {
        "rows_in": {name: ctx.input_rows(name) for name in t},
        "rows_out": {
            L.USER_FEATURES: ctx.lake.write_spark(
                users.orderBy(C.USER_ID), L.USER_FEATURES, ctx.ds
            ),
            L.ITEM_FEATURES: ctx.lake.write_spark(
                items.orderBy(C.ITEM_ID), L.ITEM_FEATURES, ctx.ds
            ),
            L.HOLDOUT: ctx.lake.write_spark(
                held_out.select(*HOLDOUT_COLUMNS).orderBy(C.USER_ID, C.ITEM_ID), L.HOLDOUT, ctx.ds
            ),
            L.HOLDOUT_USER_FEATURES: ctx.lake.write_spark(
                held_features.orderBy(C.USER_ID), L.HOLDOUT_USER_FEATURES, ctx.ds
            ),
        },
        "genres": len(genres),
    }


if __name__ == "__main__":
    main_for("build_features", body)
