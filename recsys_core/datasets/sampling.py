"""Weighted sampling without replacement for the synthetic data: an exponential race over every user x
item cell, or, for large catalogues, draws with replacement keeping each user's first distinct items."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

CHUNK_CELLS = 20_000_000  # user x item (or user x combo) scores held at once while sampling
# above it, users wanting more than this share of the catalogue race on their own rows: drawing
# them would mostly repeat popular items, each item kept costing many draws, and from about this
# share on one race over the user's row costs less CPU time than those draws
RACE_SHARE = 0.04
SAMPLE_CHUNK_ITEMS = 2_000_000  # items kept per chunk of users drawing (a racer counts n_items)
ROUND_DRAWS = 4_000_000  # draws held at once; a chunk needing more draws over several rounds
# draws per wanted item in a user's first round: popular items repeat, so an item kept needs more
# than one draw; the later rounds set their own pace from what the previous one kept
FIRST_DRAWS = 2.0
MAX_ROUNDS = 64  # users still short after it (practically none) race, so the loop always ends
# added to every user's draws of a round: a user missing a few items gets them in one round more
# often than not
EXTRA_DRAWS = 8
PACE_MARGIN = 1.5  # on a round's draws per new item, as the next round's pace (see draw)


def race(
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


class Combos(NamedTuple):
    """Items grouped by distinct genre mix: a user's affinity to an item depends only on its mix."""

    mix: np.ndarray  # (combos, genres) distinct genre-mix rows
    of_item: np.ndarray  # item -> combo
    log_pop: np.ndarray  # item -> log popularity
    log_weight: np.ndarray  # log of each combo's summed popularity (float32, as the race's)
    order: np.ndarray  # items grouped by combo
    cdf: np.ndarray  # along order: combo + cumulative popularity share within the combo
    end: np.ndarray  # one past each combo's last position in order


def combos_of(mix: np.ndarray, log_pop: np.ndarray) -> Combos:
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
    return Combos(combo_mix, of_item, log_pop, log_weight, order, combo + within, end)


def draw_chunks(counts: np.ndarray, n_items: int, n_combos: int) -> list[tuple[int, int]]:
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


def drawn_pairs(
    rng: np.random.Generator, affinity: np.ndarray, counts: np.ndarray, combos: Combos
) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) of every user's counts[u] items, user-major: drawn, or raced for the users wanting a
    large share of the catalogue (and the few still short after MAX_ROUNDS)."""
    n_items = len(combos.of_item)
    racing = counts > RACE_SHARE * n_items
    user, item, short = draw(rng, affinity, np.where(racing, 0, counts), combos)
    users, items = [user], [item]
    racers = np.flatnonzero(racing | short)
    step = max(1, CHUNK_CELLS // n_items)
    for lo in range(0, len(racers), step):
        rows = racers[lo : lo + step]
        user, item = race(rng, affinity[rows][:, combos.of_item] + combos.log_pop, counts[rows])
        users.append(rows[user])
        items.append(item)
    key = np.sort(np.concatenate(users) * n_items + np.concatenate(items))
    return key // n_items, key % n_items


def draw(
    rng: np.random.Generator, affinity: np.ndarray, counts: np.ndarray, combos: Combos
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
        size = np.ceil((counts[todo] - have[todo]) * pace[todo]).astype(np.int64) + EXTRA_DRAWS
        if size.sum() > ROUND_DRAWS:
            size = np.maximum(1, size * ROUND_DRAWS // size.sum())
        had = have[todo]
        user = np.repeat(todo, size)
        point = row_start[user] + rng.random(len(user)) * (row_end - row_start)[user]
        within = rng.random(len(user))
        # searches run in sorted order, which walks the tables forward (each search starts where the
        # last one ended), and the results go back to draw order, which decides the first distinct
        # items; each draw keeps its own uniforms, so how the sort orders equal points cannot change
        # the data
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
        pace[todo] = PACE_MARGIN * size / np.maximum(1, have[todo] - had)
        full = have[user] == counts[user]
        done.append(key[full])
        kept = key[~full]
        todo = todo[have[todo] < counts[todo]]
    key = np.concatenate([*done, np.empty(0, np.int64)])
    short = np.zeros(n_users, bool)
    short[todo] = True
    return key // n_items, key % n_items, short
