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

from pathlib import Path
from typing import NamedTuple

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
from recsys_core.inputs import InputWriter, write_input
from recsys_core.schemas import contract

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
CHUNK_CELLS = 20_000_000  # user x item (or user x combo) scores held at once while sampling
EXACT_MAX_ITEMS = 20_000  # catalogues up to it race every cell: the demo data's bytes depend on it
# above it, users wanting more than this share of the catalogue race on their own rows: drawing
# them would mostly repeat popular items (~6 to 18 draws per item kept at 3.5% of 100,000 items,
# against 2 to 4 at 50 items); measured in CPU time, the race costs less from about 4%
RACE_SHARE = 0.04
SAMPLE_CHUNK_ITEMS = 2_000_000  # items kept per chunk of users drawing (a racer counts n_items)
ROUND_DRAWS = 4_000_000  # draws held at once; a chunk needing more draws over several rounds
FIRST_DRAWS = 2.0  # draws per wanted item in a user's first round (popularity makes ~2 to 4 needed)
MAX_ROUNDS = 64  # users still short after it (practically none) race, so the loop always ends


def generate_dataset(
    out: str | Path, users: int = 2000, items: int = 1000, interactions: int = 60000, seed: int = 42
) -> dict[str, int]:
    """Write out/users, out/items and out/interactions; return their row counts."""
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
    country_shift = rng.normal(0.0, 0.3, (len(COUNTRIES), len(GENRE_NAMES)))
    write_input(out, ITEMS, item_table)
    write_input(out, USERS, user_table)

    if items <= EXACT_MAX_ITEMS:
        step = max(1, CHUNK_CELLS // items)
        chunks = [(lo, min(users, lo + step)) for lo in range(0, users, step)]
    else:
        combos = _combos(mix, log_pop)
        chunks = _draw_chunks(counts, items, len(combos.mix))
    with InputWriter(out, INTERACTIONS, contract(INTERACTIONS).arrow_schema()) as writer:
        for index, (lo, hi) in enumerate(chunks):
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
    return {USERS: users, ITEMS: items, INTERACTIONS: int(counts.sum())}


def _items(rng: np.random.Generator, n: int) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    n_genres = rng.choice([1, 2, 3], size=n, p=[0.45, 0.35, 0.2])
    # Gumbel-top-k: each item draws its genres without replacement, weighted by genre frequency
    keys = np.log(GENRE_WEIGHTS) + rng.gumbel(size=(n, len(GENRE_NAMES)))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    onehot = rank < n_genres[:, None]
    cols = np.nonzero(onehot)[1]
    offsets = np.concatenate([[0], np.cumsum(onehot.sum(axis=1))]).astype(np.int32)
    genres = pa.ListArray.from_arrays(offsets, pa.array(np.array(GENRE_NAMES)[cols]))

    year = np.maximum(1950, 2025 - np.floor(rng.exponential(14.0, n))).astype(np.int32)
    adjective, noun = rng.integers(0, len(ADJECTIVES), n), rng.integers(0, len(NOUNS), n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    titles = [f"Item {i}: The {ADJECTIVES[a]} {NOUNS[b]}" for i, a, b in zip(ids, adjective, noun, strict=True)]
    table = pa.table(
        {
            ITEM_ID: ids,
            TITLE: titles,
            YEAR: pa.array(year, mask=rng.random(n) < 0.02),
            GENRES: genres,
        }
    )

    mix = (onehot / n_genres[:, None]).astype(np.float32)
    log_pop = (-1.25 * np.log1p(rng.permutation(n))).astype(np.float32)  # Zipf-like popularity
    quality = rng.normal(0.0, 0.35, n).astype(np.float32)
    return table, mix, log_pop, quality


def _users(rng: np.random.Generator, n: int) -> tuple[pa.Table, np.ndarray]:
    country = rng.choice(len(COUNTRIES), size=n, p=COUNTRY_WEIGHTS / COUNTRY_WEIGHTS.sum())
    age = np.clip(np.round(rng.normal(34, 12, n)), 16, 70).astype(np.int32)
    gender = np.where(rng.random(n) < 0.5, "M", "F")
    table = pa.table(
        {
            USER_ID: np.arange(1, n + 1, dtype=np.int64),
            COUNTRY: pa.array(np.array(COUNTRIES)[country]),
            AGE: pa.array(age, mask=rng.random(n) < 0.08),
            GENDER: pa.array(gender, mask=rng.random(n) < 0.06),
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
    weight = rng.lognormal(0.0, 1.0, n_users) * active
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
    taste = rng.normal(0.0, 0.5, (n, len(GENRE_NAMES)))
    strong = rng.integers(0, len(GENRE_NAMES), (n, 3))
    np.add.at(taste, (np.arange(n)[:, None], strong), rng.choice([-1.5, 1.5], (n, 3)))
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
    user, item = _race(rng, affinity + log_pop, counts)
    return _rated(rng, first_user, len(counts), user, item, affinity[user, item], quality)


def _race(
    rng: np.random.Generator, log_weight: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Row u's counts[u] columns as a weighted sample without replacement, in sampling order."""
    n_items = log_weight.shape[1]
    # exponential race: the k smallest E/w are a weighted sample without replacement (as Gumbel-top-k);
    # float64 keys make ties, whose order an unstable sort may break differently per CPU, negligible
    keys = rng.standard_exponential(log_weight.shape)
    keys /= np.exp(log_weight)
    k = int(counts.max())
    top = np.argsort(keys, axis=1) if k >= n_items else np.argpartition(keys, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(top, np.argsort(np.take_along_axis(keys, top, axis=1), axis=1), axis=1)
    keep = np.arange(top.shape[1]) < counts[:, None]
    return np.nonzero(keep)[0], top[keep]


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
    bias, noise = rng.normal(0.0, 0.3, n_users), rng.normal(0.0, 0.5, len(item))
    score = 3.2 + affinity + quality[item] + bias[user] + noise
    rating = np.clip(np.round(score * 2) / 2, 0.5, 5.0).astype(np.float32)
    # each user is active over a random window, rating items at random times inside it
    start = START + rng.random(n_users) * (END - START)
    end = start + rng.random(n_users) * (END - start)
    timestamp = (start[user] + rng.random(len(item)) * (end - start)[user]).astype(np.int64)
    # by user then time, ties in input order: np.lexsort((timestamp, user)) in one stable sort of
    # one key (timestamps span under 2**28 s), an order of magnitude faster on user-major rows
    order = np.argsort(user * (1 << 28) + (timestamp - START), kind="stable")
    return pa.table(
        {
            USER_ID: (user[order] + first_user + 1).astype(np.int64),
            ITEM_ID: (item[order] + 1).astype(np.int64),
            RATING: rating[order],
            TIMESTAMP: timestamp[order],
        }
    )


class _Combos(NamedTuple):
    """Items grouped by distinct genre mix: a user's affinity to an item depends only on its mix."""

    mix: np.ndarray  # (combos, genres) distinct genre-mix rows
    of_item: np.ndarray  # item -> combo
    log_pop: np.ndarray  # item -> log popularity
    log_weight: np.ndarray  # log of each combo's summed popularity (float32, as the race's)
    order: np.ndarray  # items grouped by combo
    cdf: np.ndarray  # along order: combo + cumulative popularity share within the combo
    end: np.ndarray  # one past each combo's last position in order


def _combos(mix: np.ndarray, log_pop: np.ndarray) -> _Combos:
    combo_mix, of_item = np.unique(mix, axis=0, return_inverse=True)
    of_item = of_item.reshape(-1)
    n_combos = len(combo_mix)
    order = np.argsort(of_item, kind="stable")
    combo = of_item[order]
    pop = np.exp(log_pop.astype(np.float64))[order]
    total = np.bincount(combo, weights=pop, minlength=n_combos)
    end = np.cumsum(np.bincount(combo, minlength=n_combos))
    # shares within each combo, so every combo spans exactly [c, c + 1] and one sorted array (and
    # one searchsorted) serves all combos; dividing by the last value makes it exactly 1
    within = np.cumsum(pop / total[combo])
    within -= np.concatenate([[0.0], within[end[:-1] - 1]])[combo]
    within /= within[end - 1][combo]
    log_weight = np.log(total).astype(np.float32)
    return _Combos(combo_mix, of_item, log_pop, log_weight, order, combo + within, end)


def _draw_chunks(counts: np.ndarray, n_items: int, n_combos: int) -> list[tuple[int, int]]:
    """User ranges for drawing: at most CHUNK_CELLS user x combo weights and about
    SAMPLE_CHUNK_ITEMS items each (a racing user counts as its n_items cells)."""
    cost = np.where(counts > RACE_SHARE * n_items, n_items, counts)
    cum = np.concatenate([[0], np.cumsum(cost)])
    max_users = max(1, CHUNK_CELLS // n_combos)
    chunks, lo = [], 0
    while lo < len(counts):
        hi = int(np.searchsorted(cum, cum[lo] + SAMPLE_CHUNK_ITEMS, side="right")) - 1
        hi = min(max(hi, lo + 1), lo + max_users)
        chunks.append((lo, hi))
        lo = hi
    return chunks


def _drawn_interactions(
    rng: np.random.Generator,
    first_user: int,
    taste: np.ndarray,
    counts: np.ndarray,
    combos: _Combos,
    quality: np.ndarray,
) -> pa.Table:
    n_items = len(combos.of_item)
    affinity = taste.astype(np.float32) @ combos.mix.T  # user x combo
    racing = counts > RACE_SHARE * n_items
    user, item, short = _draw(rng, affinity, np.where(racing, 0, counts), combos)
    users, items = [user], [item]
    racers = np.flatnonzero(racing | short)
    step = max(1, CHUNK_CELLS // n_items)
    for lo in range(0, len(racers), step):
        rows = racers[lo : lo + step]
        user, item = _race(rng, affinity[rows][:, combos.of_item] + combos.log_pop, counts[rows])
        users.append(rows[user])
        items.append(item)
    # user-major rows make _rated's sort by user then time cheap
    key = np.sort(np.concatenate(users) * n_items + np.concatenate(items))
    user, item = key // n_items, key % n_items
    affinity = affinity[user, combos.of_item[item]]
    return _rated(rng, first_user, len(counts), user, item, affinity, quality)


def _draw(
    rng: np.random.Generator, affinity: np.ndarray, counts: np.ndarray, combos: _Combos
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each user's first counts[u] distinct items of draws with replacement, in draw order.

    Successive weighted sampling without replacement is exactly that. A draw picks a combo with
    weight exp(affinity) * its total popularity, then an item of it by popularity. Returns
    (user, item, short): short marks users still short after MAX_ROUNDS, left to the caller.
    """
    n_users, n_combos = affinity.shape
    n_items = len(combos.of_item)
    # one cumulative sum over all rows' combo weights, each row a segment of it: a draw searches its
    # user's segment, so one searchsorted serves every user (float64 keeps ~1e-12 of a row resolved)
    weight = affinity + combos.log_weight
    cdf = np.cumsum(np.exp(weight, out=weight).reshape(-1), dtype=np.float64)
    row_end = cdf[n_combos - 1 :: n_combos]
    row_start = np.concatenate([[0.0], row_end[:-1]])

    done: list[np.ndarray] = []  # user * n_items + item of finished users
    kept = np.empty(0, np.int64)  # the same for users still short, user-major in draw order
    have = np.zeros(n_users, np.int64)
    pace = np.full(n_users, FIRST_DRAWS)  # draws per wanted item for the user's next round
    todo = np.flatnonzero(counts > 0)
    for _ in range(MAX_ROUNDS):
        if not len(todo):
            break
        # + 8: a user missing a few items gets them in one round more often than not
        size = np.ceil((counts[todo] - have[todo]) * pace[todo]).astype(np.int64) + 8
        if size.sum() > ROUND_DRAWS:
            size = np.maximum(1, size * ROUND_DRAWS // size.sum())
        had = have[todo]
        user = np.repeat(todo, size)
        point = row_start[user] + rng.random(len(user)) * (row_end - row_start)[user]
        within = rng.random(len(user))
        # searches run in sorted order, which walks the tables forward (about twice as fast), and
        # the results go back to draw order, which decides the first distinct items; each draw keeps
        # its own uniforms, so how the sort orders equal points cannot change the data
        by_point = np.argsort(point)
        combo = np.searchsorted(cdf, point[by_point], side="right") - user[by_point] * n_combos
        # a point can round onto its row's end: it belongs to the last combo
        np.minimum(combo, n_combos - 1, out=combo)
        at = np.searchsorted(combos.cdf, combo + within[by_point], side="right")
        # likewise onto its combo's end
        np.minimum(at, combos.end[combo] - 1, out=at)
        key = np.empty(len(user), np.int64)
        key[by_point] = user[by_point] * n_items + combos.order[at]

        # per user the kept items then the new draws (both user-major: a stable sort merges them),
        # then each key's first occurrence in that order
        key = np.concatenate([kept, key])
        key = key[np.argsort(key // n_items, kind="stable")]
        _, first = np.unique(key, return_index=True)
        key = key[np.sort(first)]
        user = key // n_items
        starts = np.flatnonzero(np.concatenate([[True], user[1:] != user[:-1]]))
        rank = np.arange(len(user)) - np.repeat(starts, np.diff(np.append(starts, len(user))))
        keep = rank < counts[user]
        key, user = key[keep], user[keep]
        have[todo] = np.bincount(user, minlength=n_users)[todo]
        # each new item costs more draws than the last (the popular ones are taken): this round's
        # draws per new item, with a margin, so a user near its whole catalogue ends in a few rounds
        pace[todo] = 1.5 * size / np.maximum(1, have[todo] - had)
        full = have[user] == counts[user]
        done.append(key[full])
        kept = key[~full]
        todo = todo[have[todo] < counts[todo]]
    key = np.concatenate([*done, np.empty(0, np.int64)])
    short = np.zeros(n_users, bool)
    short[todo] = True
    return key // n_items, key % n_items, short
