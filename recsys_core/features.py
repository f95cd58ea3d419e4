"""User and item features built with Spark from the input tables (SEED.md x_u and x_m)."""

from __future__ import annotations

import re

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_core import columns as C


def genre_column(prefix: str, genre: str) -> str:
    """A stable, SQL-safe feature column name for a genre, e.g. ("g_", "Sci-Fi") -> "g_sci_fi"."""
    return prefix + re.sub(r"[^0-9a-z]+", "_", genre.lower()).strip("_")


def genre_vocabulary(items: DataFrame) -> list[str]:
    """Sorted distinct genre names of the catalogue."""
    rows = items.select(F.explode(C.GENRES).alias("g")).distinct().collect()
    return sorted(r["g"] for r in rows if r["g"])


def item_features(items: DataFrame, interactions: DataFrame, genres: list[str]) -> DataFrame:
    """item_id, year (missing -> catalogue mean, flagged), avg rating, log rating count, genre one-hot."""
    stats = interactions.groupBy(C.ITEM_ID).agg(
        F.count(F.lit(1)).alias("n"), F.avg(C.RATING).alias("mean")
    )
    global_mean = interactions.agg(F.avg(C.RATING)).first()[0] or 0.0
    mean_year = items.agg(F.avg(C.YEAR)).first()[0] or 2000.0
    out = items.join(stats, C.ITEM_ID, "left").select(
        F.col(C.ITEM_ID),
        F.coalesce(F.col(C.YEAR).cast("double"), F.lit(float(mean_year))).alias(C.YEAR),
        F.col(C.YEAR).isNull().cast("double").alias(C.YEAR_MISSING),
        F.coalesce(F.col("mean"), F.lit(float(global_mean))).cast("double").alias(C.AVG_RATING),
        F.log1p(F.coalesce(F.col("n"), F.lit(0))).cast("double").alias(C.RATING_COUNT),
        *[
            F.array_contains(C.GENRES, g).cast("double").alias(genre_column(C.ITEM_GENRE_PREFIX, g))
            for g in genres
        ],
    )
    return out


def user_features(
    users: DataFrame, interactions: DataFrame, items: DataFrame, genres: list[str]
) -> DataFrame:
    """user_id, per-genre average rating (0 where unrated), avg rating, log rating count, demographics."""
    per_genre = (
        interactions.join(items.select(C.ITEM_ID, C.GENRES), C.ITEM_ID)
        .select(C.USER_ID, C.RATING, F.explode(C.GENRES).alias("genre"))
        .groupBy(C.USER_ID)
        .pivot("genre", genres)
        .agg(F.avg(C.RATING))
    )
    per_genre = per_genre.select(
        C.USER_ID,
        *[
            F.coalesce(F.col(f"`{g}`"), F.lit(0.0)).cast("double").alias(genre_column(C.USER_GENRE_PREFIX, g))
            for g in genres
        ],
    )
    stats = interactions.groupBy(C.USER_ID).agg(F.count(F.lit(1)).alias("n"), F.avg(C.RATING).alias("mean"))
    global_mean = interactions.agg(F.avg(C.RATING)).first()[0] or 0.0
    has_age = C.AGE in users.columns
    has_gender = C.GENDER in users.columns
    age = F.col(C.AGE).cast("double") if has_age else F.lit(None).cast("double")
    gender = F.col(C.GENDER) if has_gender else F.lit(None).cast("string")
    mean_age = (users.agg(F.avg(C.AGE)).first()[0] if has_age else None) or 0.0
    base = users.select(C.USER_ID, age.alias("_age"), gender.alias("_gender"))
    out = base.join(stats, C.USER_ID, "left").join(per_genre, C.USER_ID, "left")
    return out.select(
        C.USER_ID,
        F.coalesce(F.col("mean"), F.lit(float(global_mean))).cast("double").alias(C.AVG_RATING),
        F.log1p(F.coalesce(F.col("n"), F.lit(0))).cast("double").alias(C.RATING_COUNT),
        F.coalesce(F.col("_age"), F.lit(float(mean_age))).alias(C.AGE),
        F.col("_age").isNull().cast("double").alias(C.AGE_MISSING),
        (F.col("_gender") == "M").cast("double").alias(C.GENDER_PREFIX + "m"),
        (F.col("_gender") == "F").cast("double").alias(C.GENDER_PREFIX + "f"),
        *[
            F.coalesce(F.col(genre_column(C.USER_GENRE_PREFIX, g)), F.lit(0.0)).alias(
                genre_column(C.USER_GENRE_PREFIX, g)
            )
            for g in genres
        ],
    ).fillna(0.0, subset=[C.GENDER_PREFIX + "m", C.GENDER_PREFIX + "f"])


def feature_columns(columns: list[str], key: str) -> list[str]:
    """The model inputs of a feature table: every column but its key, in stored order."""
    return [c for c in columns if c != key]
