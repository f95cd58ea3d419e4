"""User and item features built with Spark from the input tables (SEED.md x_u and x_m)."""

from __future__ import annotations

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from recsys_core import columns as C
from recsys_core.features.names import genre_column

SECONDS_PER_YEAR = 365.25 * 86400  # a Julian year: leap years included on average
# the release year a feature falls back to when no item has one: any plausible year, as the towers
# then see the same value on every row
FALLBACK_YEAR = 2000.0


def _years(column: str) -> F.Column:
    """An epoch-seconds timestamp as fractional years since 1970 (a scale the towers' scalers like)."""
    return F.col(column).cast("double") / F.lit(SECONDS_PER_YEAR)


def _aggregate_row(df: DataFrame) -> Row:
    """The row of a global aggregate (agg without groupBy), which Spark returns even over no rows."""
    row = df.first()
    if row is None:
        raise RuntimeError(f"global aggregate {df.columns} returned no row")
    return row


def genre_vocabulary(items: DataFrame) -> list[str]:
    """Sorted distinct genre names of the catalogue."""
    rows = items.select(F.explode(C.GENRES).alias("g")).distinct().collect()
    return sorted(r["g"] for r in rows if r["g"])


def _activity() -> list[F.Column]:
    """Per group: its interactions (n), and the sums of their ratings and of their times in years."""
    return [
        F.count(F.lit(1)).alias("n"),
        F.sum(C.RATING).alias("rating_sum"),
        F.sum(_years(C.TIMESTAMP)).alias("when_sum"),
    ]


def item_counts(interactions: DataFrame) -> DataFrame:
    """item_id, n: each item's interactions (its popularity)."""
    return interactions.groupBy(C.ITEM_ID).agg(F.count(F.lit(1)).alias("n"))


def _ratio(total: str, count: str) -> F.Column:
    """sum / count, null where count is 0 (as avg is over no rows)."""
    return F.when(F.col(count) > 0, F.col(total) / F.col(count))


def item_features(items: DataFrame, interactions: DataFrame, genres: list[str]) -> DataFrame:
    """item_id, year (missing -> catalogue mean, flagged), avg rating, log rating count, genre one-hot.
    One pass over the interactions: the per-item sums are cached and the global means (the values of
    items nobody rated) are taken from them."""
    stats = interactions.groupBy(C.ITEM_ID).agg(*_activity()).cache()
    global_mean, global_when = _aggregate_row(
        stats.agg(F.sum("rating_sum") / F.sum("n"), F.sum("when_sum") / F.sum("n"))
    )
    mean_year = _aggregate_row(items.agg(F.avg(C.YEAR)))[0] or FALLBACK_YEAR
    out = items.join(stats, C.ITEM_ID, "left").select(
        F.col(C.ITEM_ID),
        F.coalesce(F.col(C.YEAR).cast("double"), F.lit(float(mean_year))).alias(C.YEAR),
        F.col(C.YEAR).isNull().cast("double").alias(C.YEAR_MISSING),
        F.coalesce(_ratio("rating_sum", "n"), F.lit(float(global_mean or 0.0)))
        .cast("double")
        .alias(C.AVG_RATING),
        F.log1p(F.coalesce(F.col("n"), F.lit(0))).cast("double").alias(C.RATING_COUNT),
        F.coalesce(_ratio("when_sum", "n"), F.lit(float(global_when or 0.0))).alias(C.RATED_AT),
        *[
            F.array_contains(C.GENRES, g).cast("double").alias(genre_column(C.ITEM_GENRE_PREFIX, g))
            for g in genres
        ],
    )
    return out


def user_features(
    users: DataFrame,
    interactions: DataFrame,
    items: DataFrame,
    genres: list[str],
    popularity: DataFrame | None = None,
) -> DataFrame:
    """user_id, avg rating, log rating count, demographics, then per genre the user's average rating
    (0 where unrated) and the share of the user's interactions in that genre.

    `popularity` (item_id, n) is each item's interaction count the taste profile reads (default: counted
    in `interactions`). Two passes over the interactions: the genre pivot and the per-user sums, which
    are cached; the global means (the values of users without interactions) are taken from them."""
    per_genre = (
        interactions.join(items.select(C.ITEM_ID, C.GENRES), C.ITEM_ID)
        .select(C.USER_ID, C.RATING, F.explode(C.GENRES).alias("genre"))
        .groupBy(C.USER_ID)
        # pyspark annotates values as an invariant list[bool | float | int | str], which rejects a list[str]
        .pivot("genre", genres)  # type: ignore[arg-type]
        .agg(F.avg(C.RATING).alias("avg"), F.count(F.lit(1)).alias("n"))
    )
    # the user's taste profile over the items they chose: how mainstream, and from which years
    popularity = item_counts(interactions) if popularity is None else popularity
    item_pop = popularity.select(C.ITEM_ID, F.log1p(F.col("n")).alias("_item_pop"))
    profile = interactions.join(item_pop, C.ITEM_ID, "left").join(
        items.select(C.ITEM_ID, C.YEAR), C.ITEM_ID, "left"
    )
    era = F.col(C.YEAR).cast("double")
    stats = (
        profile.groupBy(C.USER_ID)
        .agg(
            *_activity(),
            F.max(_years(C.TIMESTAMP)).alias("last"),
            F.sum(F.coalesce(F.col("_item_pop"), F.lit(0.0))).alias("pop_sum"),
            F.sum(era).alias("era_sum"),
            F.count(era).alias("era_n"),
        )
        .cache()
    )
    global_mean, global_when, global_pop, global_era = _aggregate_row(
        stats.agg(
            F.sum("rating_sum") / F.sum("n"),
            F.sum("when_sum") / F.sum("n"),
            F.sum("pop_sum") / F.sum("n"),
            F.sum("era_sum") / F.sum("era_n"),
        )
    )
    per_genre = per_genre.join(stats.select(C.USER_ID, F.col("n").alias("_total")), C.USER_ID)
    per_genre = per_genre.select(
        C.USER_ID,
        *[
            F.coalesce(F.col(f"`{g}_avg`"), F.lit(0.0))
            .cast("double")
            .alias(genre_column(C.USER_GENRE_PREFIX, g))
            for g in genres
        ],
        *[
            (F.coalesce(F.col(f"`{g}_n`"), F.lit(0)) / F.col("_total"))
            .cast("double")
            .alias(genre_column(C.USER_GENRE_SHARE_PREFIX, g))
            for g in genres
        ],
    )
    has_age = C.AGE in users.columns
    has_gender = C.GENDER in users.columns
    age = F.col(C.AGE).cast("double") if has_age else F.lit(None).cast("double")
    gender = F.col(C.GENDER) if has_gender else F.lit(None).cast("string")
    mean_age = (_aggregate_row(users.agg(F.avg(C.AGE)))[0] if has_age else None) or 0.0
    base = users.select(C.USER_ID, age.alias("_age"), gender.alias("_gender"))
    out = base.join(stats, C.USER_ID, "left").join(per_genre, C.USER_ID, "left")
    return out.select(
        C.USER_ID,
        F.coalesce(_ratio("rating_sum", "n"), F.lit(float(global_mean or 0.0)))
        .cast("double")
        .alias(C.AVG_RATING),
        F.log1p(F.coalesce(F.col("n"), F.lit(0))).cast("double").alias(C.RATING_COUNT),
        F.coalesce(_ratio("when_sum", "n"), F.lit(float(global_when or 0.0))).alias(C.ACTIVE_AT),
        F.coalesce(F.col("last"), F.lit(float(global_when or 0.0))).alias(C.LAST_ACTIVE_AT),
        F.coalesce(_ratio("pop_sum", "n"), F.lit(float(global_pop or 0.0))).alias(
            C.TASTE_POPULARITY
        ),
        F.coalesce(_ratio("era_sum", "era_n"), F.lit(float(global_era or FALLBACK_YEAR))).alias(
            C.TASTE_YEAR
        ),
        F.coalesce(F.col("_age"), F.lit(float(mean_age))).alias(C.AGE),
        F.col("_age").isNull().cast("double").alias(C.AGE_MISSING),
        (F.col("_gender") == "M").cast("double").alias(C.GENDER_PREFIX + "m"),
        (F.col("_gender") == "F").cast("double").alias(C.GENDER_PREFIX + "f"),
        *[
            F.coalesce(F.col(genre_column(prefix, g)), F.lit(0.0)).alias(genre_column(prefix, g))
            for prefix in (C.USER_GENRE_PREFIX, C.USER_GENRE_SHARE_PREFIX)
            for g in genres
        ],
    ).fillna(0.0, subset=[C.GENDER_PREFIX + "m", C.GENDER_PREFIX + "f"])
