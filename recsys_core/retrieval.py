"""Per-user candidate retrieval with Spark (SEED.md "Retrieval"), each candidate keeping why it came."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_core import columns as C
from recsys_core.config import RetrievalConfig


def _reason(tag: str, value) -> F.Column:
    return F.concat(F.lit(tag + ":"), value.cast("string"))


def popularity(items: DataFrame, interactions: DataFrame) -> DataFrame:
    """item_id, n (interactions), mean (rating) of every catalogue item: the order of every "top" list."""
    stats = interactions.groupBy(C.ITEM_ID).agg(F.count(F.lit(1)).alias("n"), F.avg(C.RATING).alias("mean"))
    return items.select(C.ITEM_ID).join(stats, C.ITEM_ID, "left").fillna(0, subset=["n"])


def _top(df: DataFrame, by: list[str], size: int) -> DataFrame:
    """Keep the `size` most popular items per group: more interactions, then higher mean, then lower id."""
    w = Window.partitionBy(*by).orderBy(F.desc("n"), F.desc("mean"), F.asc(C.ITEM_ID))
    return df.withColumn("pos", F.row_number().over(w)).where(F.col("pos") <= size)


def similar_to_recent(interactions: DataFrame, neighbors: DataFrame, cfg: RetrievalConfig) -> DataFrame:
    """For each of the user's last `recent_items` items, its `similar_per_item` nearest items."""
    w = Window.partitionBy(C.USER_ID).orderBy(F.desc(C.TIMESTAMP), F.desc(C.ITEM_ID))
    recent = interactions.withColumn("pos", F.row_number().over(w)).where(F.col("pos") <= cfg.recent_items)
    near = neighbors.where(F.col(C.RANK) <= cfg.similar_per_item)
    return recent.select(C.USER_ID, C.ITEM_ID).join(near, C.ITEM_ID).select(
        C.USER_ID,
        F.col(C.NEIGHBOR_ID).alias(C.ITEM_ID),
        _reason(C.REASON_SIMILAR, F.col(C.ITEM_ID)).alias(C.REASON),
    )


def top_in_genres(
    interactions: DataFrame, items: DataFrame, pop: DataFrame, cfg: RetrievalConfig
) -> DataFrame:
    """The top `items_per_genre` items of each of the user's `top_genres` most watched genres."""
    genres = items.select(C.ITEM_ID, F.explode(C.GENRES).alias("genre"))
    watched = interactions.join(genres, C.ITEM_ID).groupBy(C.USER_ID, "genre").agg(F.count(F.lit(1)).alias("w"))
    w = Window.partitionBy(C.USER_ID).orderBy(F.desc("w"), F.asc("genre"))
    favourite = watched.withColumn("pos", F.row_number().over(w)).where(F.col("pos") <= cfg.top_genres)
    best = _top(genres.join(pop, C.ITEM_ID), ["genre"], cfg.items_per_genre)
    return favourite.select(C.USER_ID, "genre").join(best.select("genre", C.ITEM_ID), "genre").select(
        C.USER_ID, C.ITEM_ID, _reason(C.REASON_GENRE, F.col("genre")).alias(C.REASON)
    )


def top_in_country(
    users: DataFrame, interactions: DataFrame, pop: DataFrame, cfg: RetrievalConfig
) -> DataFrame:
    """The top `country_items` items among users of the user's country; the global list when unknown."""
    known = users.where(F.col(C.COUNTRY) != C.UNKNOWN_COUNTRY).select(C.USER_ID, C.COUNTRY)
    per_country = (
        interactions.join(known, C.USER_ID)
        .groupBy(C.COUNTRY, C.ITEM_ID)
        .agg(F.count(F.lit(1)).alias("n"), F.avg(C.RATING).alias("mean"))
    )
    country_top = _top(per_country, [C.COUNTRY], cfg.country_items).select(C.COUNTRY, C.ITEM_ID)
    has_list = country_top.select(C.COUNTRY).distinct()
    local = known.join(country_top, C.COUNTRY).select(
        C.USER_ID, C.ITEM_ID, _reason(C.REASON_COUNTRY, F.col(C.COUNTRY)).alias(C.REASON)
    )
    # users of an unknown region, or of a country nobody there has rated yet, get the global list
    no_list = users.select(C.USER_ID, C.COUNTRY).join(has_list, C.COUNTRY, "left_anti")
    global_top = _top(pop.withColumn("all", F.lit(1)), ["all"], cfg.country_items).select(C.ITEM_ID)
    fallback = no_list.crossJoin(global_top).select(
        C.USER_ID, C.ITEM_ID, F.lit(f"{C.REASON_GLOBAL}:all").alias(C.REASON)
    )
    return local.unionByName(fallback)


def popular_fill(
    users: DataFrame, interactions: DataFrame, candidates: DataFrame, pop: DataFrame, top_n: int
) -> DataFrame:
    """Tops up users with fewer than top_n candidates with the most popular items they have not seen."""
    counts = candidates.groupBy(C.USER_ID).agg(F.count(F.lit(1)).alias("c"))
    short = (
        users.select(C.USER_ID)
        .join(counts, C.USER_ID, "left")
        .select(C.USER_ID, (F.lit(top_n) - F.coalesce(F.col("c"), F.lit(0))).alias("need"))
        .where(F.col("need") > 0)
    )
    # enough popular items to cover need after removing the heaviest user's history and candidates
    seen_max = interactions.groupBy(C.USER_ID).count().agg(F.max("count")).first()[0] or 0
    w = Window.orderBy(F.desc("n"), F.desc("mean"), F.asc(C.ITEM_ID))
    head = pop.withColumn("pos", F.row_number().over(w)).where(F.col("pos") <= 2 * top_n + seen_max)
    pairs = short.crossJoin(head.select(C.ITEM_ID, "pos"))
    pairs = pairs.join(interactions.select(C.USER_ID, C.ITEM_ID), [C.USER_ID, C.ITEM_ID], "left_anti")
    pairs = pairs.join(candidates.select(C.USER_ID, C.ITEM_ID), [C.USER_ID, C.ITEM_ID], "left_anti")
    w_user = Window.partitionBy(C.USER_ID).orderBy("pos")
    return (
        pairs.withColumn("k", F.row_number().over(w_user))
        .where(F.col("k") <= F.col("need"))
        .select(C.USER_ID, C.ITEM_ID, F.lit(f"{C.REASON_POPULAR}:all").alias(C.REASON))
    )


def retrieve(
    users: DataFrame,
    items: DataFrame,
    interactions: DataFrame,
    neighbors: DataFrame,
    cfg: RetrievalConfig,
    top_n: int,
) -> DataFrame:
    """Candidates (user_id, item_id, reasons): all sources merged, deduplicated, watched items removed,
    and topped up so every user has at least min(top_n, unseen items) candidates."""
    # interactions with items outside the catalogue can neither be recommended nor explain anything
    interactions = interactions.join(items.select(C.ITEM_ID), C.ITEM_ID, "left_semi")
    pop = popularity(items, interactions)
    raw = (
        similar_to_recent(interactions, neighbors, cfg)
        .unionByName(top_in_genres(interactions, items, pop, cfg))
        .unionByName(top_in_country(users, interactions, pop, cfg))
    )
    seen = interactions.select(C.USER_ID, C.ITEM_ID)
    eligible = users.select(C.USER_ID)
    # a neighbour table can name items that left the catalogue: never recommend those
    fresh = (
        raw.join(items.select(C.ITEM_ID), C.ITEM_ID, "left_semi")
        .join(eligible, C.USER_ID, "left_semi")
        .join(seen, [C.USER_ID, C.ITEM_ID], "left_anti")
    )
    merged = fresh.groupBy(C.USER_ID, C.ITEM_ID).agg(F.array_sort(F.collect_set(C.REASON)).alias(C.REASONS))
    fill = popular_fill(users, interactions, merged, pop, top_n).groupBy(C.USER_ID, C.ITEM_ID).agg(
        F.array(F.first(C.REASON)).alias(C.REASONS)
    )
    return merged.unionByName(fill)
