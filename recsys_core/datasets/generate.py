"""Synthetic users, items and interactions with learnable genre tastes, written as the three input tables.

A user's items are a weighted sample without replacement, weight exp(taste . mix) * popularity.
Up to EXACT_MAX_ITEMS items that is an exponential race over every user x item cell, whose bytes
the demo data and tests pin. Beyond, that users x items work would be 10^11 cells for a million
users and 100,000 items, so items are drawn with replacement (a genre mix, "combo", then an item
of it by popularity) and each user keeps its first `count` distinct ones: the same distribution,
at a cost near the items kept. A user wanting a large share of the catalogue would mostly redraw
popular items, so it races on its own row instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from recsys_core.columns import (
    AGE,
    COUNTRY,
    GENDER,
    GENRES,
    INTERACTIONS,
    ITEM_ID,
    ITEMS,
    RATING,
    TIMESTAMP,
    TITLE,
    UNKNOWN_COUNTRY,
    USER_ID,
    USERS,
    YEAR,
)
from recsys_core.datasets import sampling
from recsys_core.io.contracts import contract
from recsys_core.io.inputs import InputWriter, write_input

GENRE_NAMES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War",
    "Western",
)  # fmt: skip
# roughly MovieLens genre frequencies: Drama and Comedy dominate, Film-Noir is rare
GENRE_WEIGHTS = np.array([9, 6, 3, 3, 16, 5, 2, 20, 3, 0.5, 4, 1.5, 2.5, 7, 4, 7, 1.5, 1])
COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "JP", "CA", UNKNOWN_COUNTRY)
COUNTRY_WEIGHTS = np.array([35, 12, 10, 8, 12, 7, 6, 5, 5])
ADJECTIVES = ("Silent", "Crimson", "Last", "Hidden", "Broken", "Golden", "Distant", "Wild", "Frozen",
              "Secret", "Lonely", "Electric", "Midnight", "Burning", "Forgotten", "Endless")  # fmt: skip
NOUNS = ("Harbor", "Empire", "Garden", "River", "Machine", "Kingdom", "Promise", "Shadow", "Voyage",
         "Witness", "Summer", "Frontier", "Signal", "Orchard", "Storm", "Letter")  # fmt: skip
START, END = 1577836800, 1767225599  # 2020-01-01 00:00:00 .. 2025-12-31 23:59:59 UTC
COLD_SHARE = 0.02
EXACT_MAX_ITEMS = 20_000  # catalogues up to it race every cell: the demo data's bytes depend on it

# items: one to three genres each, most items one or two
GENRES_PER_ITEM = (1, 2, 3)
GENRES_PER_ITEM_P = (0.45, 0.35, 0.2)
# release years: NEWEST_YEAR minus an exponential age, so that recent items dominate, and none
# before OLDEST_YEAR
NEWEST_YEAR, OLDEST_YEAR = 2025, 1950
MEAN_ITEM_AGE = 14.0  # years
YEAR_MISSING_SHARE = 0.02  # items without a year: the features' missing-year path gets rows
ZIPF_EXPONENT = 1.25  # log popularity = -ZIPF_EXPONENT * log(1 + rank): a few hits, a long tail
QUALITY_STD = 0.35  # what an item is worth beyond its genres: it moves every user's rating of it
# users: adult ages around AGE_MEAN, half of them male, some demographics missing
AGE_MEAN, AGE_STD = 34, 12
MIN_AGE, MAX_AGE = 16, 70
MALE_SHARE = 0.5
AGE_MISSING_SHARE = 0.08  # users without an age: the features' missing-age path gets rows
GENDER_MISSING_SHARE = 0.06
COUNTRY_TASTE_STD = 0.3  # countries differ a little in taste, so country is a (weak) feature
ACTIVITY_SIGMA = 1.0  # lognormal spread of activity: a few heavy users, many light ones
# hidden tastes, which the towers have to learn: mild for every genre, strong for STRONG_TASTES
# genres per user
TASTE_STD = 0.5
STRONG_TASTES = 3
STRONG_TASTE = 1.5
# ratings: BASE_SCORE + affinity + quality + user bias + noise, in half stars; the base sits a
# little above the scale's middle, as real ratings lean positive
BASE_SCORE = 3.2
USER_BIAS_STD = 0.3
RATING_NOISE_STD = 0.5
MIN_RATING, MAX_RATING = 0.5, 5.0
# sort key user * USER_SORT_STRIDE + (timestamp - START): the stride exceeds END - START, so the key
# orders by user, then time
USER_SORT_STRIDE = 1 << 28


def generate_dataset(
    out: str | Path,
    users: int = 2000,
    items: int = 1000,
    interactions: int = 60000,
    seed: int = 42,
    report: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Write out/users, out/items and out/interactions; return their row counts. `report` hears
    where it is (a table written, each chunk of interactions) as it goes."""
    say = report or (lambda text: None)
    for name, value in (("users", users), ("items", items), ("interactions", interactions)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.default_rng(seed)
    item_table, mix, log_pop, quality = _items(rng, items)
    user_table, country = _users(rng, users)
    counts = _counts(rng, users, items, interactions)
    # countries differ a little in taste, so country is a (weak) feature
    country_shift = rng.normal(0.0, COUNTRY_TASTE_STD, (len(COUNTRIES), len(GENRE_NAMES)))
    write_input(out, ITEMS, item_table)
    say(f"items: {items:,} rows written")
    write_input(out, USERS, user_table)
    say(f"users: {users:,} rows written")

    if items <= EXACT_MAX_ITEMS:
        step = max(1, sampling.CHUNK_CELLS // items)
        chunks = [(lo, min(users, lo + step)) for lo in range(0, users, step)]
    else:
        combos = sampling.combos_of(mix, log_pop)
        chunks = sampling.draw_chunks(counts, items, len(combos.mix))
    total, written = int(counts.sum()), 0
    with InputWriter(out, INTERACTIONS, contract(INTERACTIONS).arrow_schema()) as writer:
        for index, (lo, hi) in enumerate(chunks):
            say(
                f"interactions: chunk {index + 1}/{len(chunks)}, {written:,} of {total:,} rows so far"
            )
            if counts[lo:hi].sum() == 0:
                continue
            # each chunk has its own stream so the data depends only on (seed, chunk index)
            chunk_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
            taste = _tastes(chunk_rng, hi - lo) + country_shift[country[lo:hi]]
            if items <= EXACT_MAX_ITEMS:
                table = _interactions(chunk_rng, lo, taste, counts[lo:hi], mix, log_pop, quality)
            else:
                table = _drawn_interactions(chunk_rng, lo, taste, counts[lo:hi], combos, quality)
            writer.write(table)
            written += table.num_rows
    say(f"interactions: {written:,} rows written")
    return {USERS: users, ITEMS: items, INTERACTIONS: total}


def _items(rng: np.random.Generator, n: int) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    n_genres = rng.choice(GENRES_PER_ITEM, size=n, p=GENRES_PER_ITEM_P)
    # Gumbel-top-k: each item draws its genres without replacement, weighted by genre frequency
    keys = np.log(GENRE_WEIGHTS) + rng.gumbel(size=(n, len(GENRE_NAMES)))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    onehot = rank < n_genres[:, None]
    cols = np.nonzero(onehot)[1]
    offsets = np.concatenate([[0], np.cumsum(onehot.sum(axis=1))]).astype(np.int32)
    genres = pa.ListArray.from_arrays(offsets, pa.array(np.array(GENRE_NAMES)[cols]))

    year = np.maximum(
        OLDEST_YEAR, NEWEST_YEAR - np.floor(rng.exponential(MEAN_ITEM_AGE, n))
    ).astype(np.int32)
    adjective, noun = rng.integers(0, len(ADJECTIVES), n), rng.integers(0, len(NOUNS), n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    titles = [
        f"Item {i}: The {ADJECTIVES[a]} {NOUNS[b]}"
        for i, a, b in zip(ids, adjective, noun, strict=True)
    ]
    table = pa.table(
        {
            ITEM_ID: ids,
            TITLE: titles,
            YEAR: pa.array(year, mask=rng.random(n) < YEAR_MISSING_SHARE),
            GENRES: genres,
        }
    )

    mix = (onehot / n_genres[:, None]).astype(np.float32)
    # Zipf-like popularity
    log_pop = (-ZIPF_EXPONENT * np.log1p(rng.permutation(n))).astype(np.float32)
    quality = rng.normal(0.0, QUALITY_STD, n).astype(np.float32)
    return table, mix, log_pop, quality


def _users(rng: np.random.Generator, n: int) -> tuple[pa.Table, np.ndarray]:
    country = rng.choice(len(COUNTRIES), size=n, p=COUNTRY_WEIGHTS / COUNTRY_WEIGHTS.sum())
    age = np.clip(np.round(rng.normal(AGE_MEAN, AGE_STD, n)), MIN_AGE, MAX_AGE).astype(np.int32)
    gender = np.where(rng.random(n) < MALE_SHARE, "M", "F")
    table = pa.table(
        {
            USER_ID: np.arange(1, n + 1, dtype=np.int64),
            COUNTRY: pa.array(np.array(COUNTRIES)[country]),
            AGE: pa.array(age, mask=rng.random(n) < AGE_MISSING_SHARE),
            GENDER: pa.array(gender, mask=rng.random(n) < GENDER_MISSING_SHARE),
        }
    )
    return table, country


def _counts(rng: np.random.Generator, n_users: int, n_items: int, total: int) -> np.ndarray:
    """Interactions per user: lognormal activity, ~2% cold users, each capped at the catalogue size."""
    active = np.ones(n_users, dtype=bool)
    active[rng.permutation(n_users)[: round(COLD_SHARE * n_users)]] = False
    total = min(total, int(active.sum()) * n_items)
    if total < active.sum():
        active[np.flatnonzero(active)[total:]] = False
    counts = active.astype(np.int64)
    weight = rng.lognormal(0.0, ACTIVITY_SIGMA, n_users) * active
    rest = total - int(counts.sum())
    while rest > 0:
        counts += rng.multinomial(rest, weight / weight.sum())
        over = np.maximum(counts - n_items, 0)
        counts -= over
        weight[counts >= n_items] = 0.0
        rest = int(over.sum())
    return counts


def _tastes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Hidden genre tastes: mild everywhere, with three strong likes or dislikes per user."""
    taste = rng.normal(0.0, TASTE_STD, (n, len(GENRE_NAMES)))
    strong = rng.integers(0, len(GENRE_NAMES), (n, STRONG_TASTES))
    np.add.at(
        taste,
        (np.arange(n)[:, None], strong),
        rng.choice([-STRONG_TASTE, STRONG_TASTE], (n, STRONG_TASTES)),
    )
    return taste


def _interactions(
    rng: np.random.Generator,
    first_user: int,
    taste: np.ndarray,
    counts: np.ndarray,
    mix: np.ndarray,
    log_pop: np.ndarray,
    quality: np.ndarray,
) -> pa.Table:
    affinity = taste.astype(np.float32) @ mix.T
    user, item = sampling.race(rng, affinity + log_pop, counts)
    return _rated(rng, first_user, len(counts), user, item, affinity[user, item], quality)


def _rated(
    rng: np.random.Generator,
    first_user: int,
    n_users: int,
    user: np.ndarray,
    item: np.ndarray,
    affinity: np.ndarray,
    quality: np.ndarray,
) -> pa.Table:
    """The chosen (user, item) pairs with ratings and timestamps, sorted by user then time."""
    bias = rng.normal(0.0, USER_BIAS_STD, n_users)
    noise = rng.normal(0.0, RATING_NOISE_STD, len(item))
    score = BASE_SCORE + affinity + quality[item] + bias[user] + noise
    # rounded to half stars
    rating = np.clip(np.round(score * 2) / 2, MIN_RATING, MAX_RATING).astype(np.float32)
    # each user is active over a random window, rating items at random times inside it
    start = START + rng.random(n_users) * (END - START)
    end = start + rng.random(n_users) * (END - start)
    timestamp = (start[user] + rng.random(len(item)) * (end - start)[user]).astype(np.int64)
    # by user then time, ties in input order: the order of np.lexsort((timestamp, user)), from one
    # stable sort of a single integer key, which costs much less than lexsort on user-major rows
    order = np.argsort(user * USER_SORT_STRIDE + (timestamp - START), kind="stable")
    return pa.table(
        {
            USER_ID: (user[order] + first_user + 1).astype(np.int64),
            ITEM_ID: (item[order] + 1).astype(np.int64),
            RATING: rating[order],
            TIMESTAMP: timestamp[order],
        }
    )


def _drawn_interactions(
    rng: np.random.Generator,
    first_user: int,
    taste: np.ndarray,
    counts: np.ndarray,
    combos: sampling.Combos,
    quality: np.ndarray,
) -> pa.Table:
    affinity = taste.astype(np.float32) @ combos.mix.T  # user x combo
    # user-major rows make _rated's sort by user then time cheap
    user, item = sampling.drawn_pairs(rng, affinity, counts, combos)
    return _rated(
        rng, first_user, len(counts), user, item, affinity[user, combos.of_item[item]], quality
    )
