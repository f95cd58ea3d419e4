"""The nightly held-out slice: the newest interactions of a fixed, hash-chosen share of users.

The same users are chosen every night (a hash of user_id, not a random draw), and for each of them
the offline protocol's rule applies: the last 20% of their interactions by (timestamp, item_id),
rounded half up and at least one, as long as one interaction stays for training. The towers never
train on the slice, so each night's new model and the last blessed one are judged on the same rows.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_core import columns as C
from recsys_core.evaluation.protocol import TEST_SHARE
from recsys_core.features.build import item_counts

# users are chosen by hash bucket: the held-out share's resolution is 1 / HASH_BUCKETS
HASH_BUCKETS = 10_000


def in_slice(share: float) -> F.Column:
    """True for the users of the held-out share (stable across runs and Spark versions: xxhash64)."""
    return F.pmod(F.xxhash64(F.col(C.USER_ID).cast("long")), F.lit(HASH_BUCKETS)) < F.lit(
        int(share * HASH_BUCKETS)
    )


def split_holdout(interactions: DataFrame, share: float) -> tuple[DataFrame, DataFrame]:
    """(the slice users' training rows, their held-out rows): held-out rows are each slice user's
    newest interactions. Only the slice's rows are ordered in time (the share of the whole), so the
    other users' interactions are read once and never sorted."""
    chosen = interactions.where(in_slice(share))
    w = Window.partitionBy(C.USER_ID).orderBy(C.TIMESTAMP, C.ITEM_ID)
    n = F.count(F.lit(1)).over(Window.partitionBy(C.USER_ID))
    # TEST_SHARE of the user's interactions rounded half up (floor of x + 0.5), at least one
    n_test = F.greatest(F.lit(1), F.floor(F.lit(TEST_SHARE) * n + F.lit(0.5)))
    marked = (
        chosen.withColumn("_pos", F.row_number().over(w) - 1)
        .withColumn("_n", n)
        .withColumn("_held", (F.col("_pos") >= F.col("_n") - n_test) & (n_test < F.col("_n")))
    )
    keep = list(interactions.columns)
    return marked.where(~F.col("_held")).select(*keep), marked.where(F.col("_held")).select(*keep)


def training_popularity(interactions: DataFrame, held_out: DataFrame) -> DataFrame:
    """item_id, n: each item's interactions outside the held-out rows (all counts minus the held
    ones), the popularity the held-out users' taste profile reads, as the training data has it."""
    held = item_counts(held_out).withColumnRenamed("n", "_held")
    return (
        item_counts(interactions)
        .join(held, C.ITEM_ID, "left")
        .select(C.ITEM_ID, (F.col("n") - F.coalesce(F.col("_held"), F.lit(0))).alias("n"))
    )
