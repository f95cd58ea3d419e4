"""SEED.md's candidate sources for a batch of users at once, in numpy (the retrieval step's kernel).

Items are addressed by their position in the sorted catalogue and reasons by their position in the
sorted reason vocabulary, so every list is an integer array and sorting codes sorts the strings.
`Sources` holds what every user shares (neighbor lists, genre and country top lists, popularity);
`candidates` turns a batch of users' histories into their deduplicated, unseen candidates, each with
all of its reasons, topped up to top_n with popular items. Spark runs it per partition (retrieval.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_core import columns as C
from recsys_core.config import RetrievalConfig
from recsys_core.io.sorted_keys import distinct, member, positions

# a batch's (user, item, reason) keys, user * n * reasons at most, must stay below this: int64 holds
# them with room left for the arithmetic on them
MAX_KEY = 2**62


@dataclass(frozen=True)
class Sources:
    item_ids: np.ndarray  # (n,) ascending catalogue ids: an item's position is its index
    neighbors: np.ndarray  # (n, similar_per_item) positions of each item's nearest items, -1 = none
    genre_offsets: (
        np.ndarray
    )  # (n + 1,) each item's genres are genre_codes[offsets[i]:offsets[i + 1]]
    genre_codes: np.ndarray  # codes into the sorted genre names
    genre_top: np.ndarray  # (genres, items_per_genre) most popular items of each genre, -1 padded
    countries: np.ndarray  # sorted names of the countries that have a list
    country_top: (
        np.ndarray
    )  # (countries + 1, country_items): each country's list, the last row the global one
    popular: np.ndarray  # every position, most popular first
    vocabulary: np.ndarray  # sorted reason strings; a reason's code is its index
    similar_reason: np.ndarray  # (n,) code of "similar_to:<item_id>"
    genre_reason: np.ndarray  # (genres,) code of "top_genre:<genre>"
    country_reason: np.ndarray  # (countries + 1,) codes of "top_country:<c>", then "top_global:all"
    fill_reason: int  # code of "popular_fill:all"

    @property
    def global_row(self) -> int:
        return len(self.countries)


@dataclass(frozen=True)
class Candidates:
    """Candidates of a batch sorted by (user, item): users are batch indices, items positions."""

    user: np.ndarray
    item: np.ndarray
    reason_offsets: (
        np.ndarray
    )  # candidate k's reasons are reasons[reason_offsets[k]:reason_offsets[k + 1]]
    reasons: np.ndarray  # ascending codes per candidate


def _pad(lists: list[np.ndarray], width: int) -> np.ndarray:
    out = np.full((len(lists), width), -1, dtype=np.int64)
    for row, values in enumerate(lists):
        out[row, : min(width, len(values))] = values[:width]
    return out


def _expand(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ranges starts[k] .. starts[k] + counts[k] - 1."""
    total = int(counts.sum())
    before = np.cumsum(counts) - counts
    return np.repeat(starts - before, counts) + np.arange(total, dtype=np.int64)


def popularity_order(n: np.ndarray, mean: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """Positions by more interactions, then higher mean rating, then lower id (every "top" list's order)."""
    return np.lexsort((item_ids, -np.nan_to_num(mean, nan=-np.inf), -n))


def build_sources(
    item_ids: np.ndarray,
    item_genres: list[list[str]],
    n: np.ndarray,
    mean: np.ndarray,
    neighbor_lists: tuple[np.ndarray, np.ndarray, np.ndarray],
    country_lists: dict[str, np.ndarray],
    cfg: RetrievalConfig,
) -> Sources:
    """Sources from the catalogue (ids ascending, each item's genres, interaction count and mean rating),
    the neighbor table as (item_id, rank, neighbor_id) arrays, and each country's item ids in list order."""
    item_ids = np.asarray(item_ids, dtype=np.int64)
    if len(item_ids) > 1 and not np.all(item_ids[1:] > item_ids[:-1]):
        raise ValueError("build_sources needs the catalogue's ids unique and ascending")
    n_items = len(item_ids)
    popular = popularity_order(
        np.asarray(n, dtype=np.int64), np.asarray(mean, dtype=np.float64), item_ids
    )

    genre_names = np.array(sorted({g for gs in item_genres for g in gs}), dtype=object)
    counts = np.array([len(gs) for gs in item_genres], dtype=np.int64)
    genre_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    flat = [g for gs in item_genres for g in gs]
    genre_codes = (
        np.searchsorted(genre_names, np.array(flat, dtype=object)).astype(np.int64)
        if flat
        else np.zeros(0, dtype=np.int64)
    )
    # every (genre, item) in popularity order, then the first items_per_genre of each genre
    by_pop = np.repeat(popular, counts[popular])
    pair_genres = genre_codes[_expand(genre_offsets[popular], counts[popular])]
    order = np.argsort(pair_genres, kind="stable")
    genre_top = (
        _pad(
            np.split(
                by_pop[order], np.searchsorted(pair_genres[order], np.arange(1, len(genre_names)))
            ),
            cfg.items_per_genre,
        )
        if len(genre_names)
        else np.zeros((0, cfg.items_per_genre), np.int64)
    )

    near_item, near_rank, near_id = (np.asarray(a, dtype=np.int64) for a in neighbor_lists)
    neighbors = np.full((n_items, cfg.similar_per_item), -1, dtype=np.int64)
    row, to = positions(item_ids, near_item), positions(item_ids, near_id)
    ok = (row >= 0) & (near_rank >= 1) & (near_rank <= cfg.similar_per_item)
    neighbors[row[ok], near_rank[ok] - 1] = to[ok]
    # a neighbor outside the catalogue leaves a hole in the list; the kernel skips holes (-1)

    countries = np.array(sorted(country_lists), dtype=object)
    global_list = popular[: cfg.country_items]
    country_top = _pad(
        [positions(item_ids, np.asarray(country_lists[c], dtype=np.int64)) for c in countries]
        + [global_list],
        cfg.country_items,
    )

    reasons = np.concatenate(
        [
            np.array([f"{C.REASON_SIMILAR}:{i}" for i in item_ids.tolist()], dtype=object),
            np.array([f"{C.REASON_GENRE}:{g}" for g in genre_names], dtype=object),
            np.array([f"{C.REASON_COUNTRY}:{c}" for c in countries], dtype=object),
            np.array([f"{C.REASON_GLOBAL}:all", f"{C.REASON_POPULAR}:all"], dtype=object),
        ]
    )
    order = np.argsort(reasons.astype(str), kind="stable")
    code = np.empty(len(reasons), dtype=np.int64)
    code[order] = np.arange(len(reasons))
    g0, c0 = n_items, n_items + len(genre_names)
    return Sources(
        item_ids=item_ids,
        neighbors=neighbors,
        genre_offsets=genre_offsets,
        genre_codes=genre_codes,
        genre_top=genre_top,
        countries=countries,
        country_top=country_top,
        popular=popular,
        vocabulary=reasons[order],
        similar_reason=code[:g0],
        genre_reason=code[g0:c0],
        country_reason=code[c0:],
        fill_reason=int(code[-1]),
    )


def candidates(
    src: Sources,
    cfg: RetrievalConfig,
    top_n: int,
    country: np.ndarray,
    ev_user: np.ndarray,
    ev_item: np.ndarray,
) -> Candidates:
    """Candidates of users 0..len(country)-1 (country: row of country_top) from their interactions
    (ev_user ascending; per user most recent first; ev_item catalogue positions)."""
    users, n = len(country), len(src.item_ids)
    if n == 0 or users == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Candidates(empty, empty, np.zeros(1, dtype=np.int64), empty)
    ev_user, ev_item = np.asarray(ev_user, dtype=np.int64), np.asarray(ev_item, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    # similar to recent: the nearest items of each user's last recent_items items
    first = np.searchsorted(ev_user, np.arange(users))
    recent = (np.arange(len(ev_user)) - first[ev_user]) < cfg.recent_items
    ru, ri = ev_user[recent], ev_item[recent]
    width = src.neighbors.shape[1]
    parts.append(
        (np.repeat(ru, width), src.neighbors[ri].ravel(), np.repeat(src.similar_reason[ri], width))
    )

    # top in genres: the best items of each user's top_genres most watched genres (ties: genre name)
    genres = len(src.genre_reason)
    if genres and cfg.top_genres:
        counts = src.genre_offsets[ev_item + 1] - src.genre_offsets[ev_item]
        watched = np.bincount(
            np.repeat(ev_user, counts) * genres
            + src.genre_codes[_expand(src.genre_offsets[ev_item], counts)],
            minlength=users * genres,
        ).reshape(users, genres)
        best = np.argsort(-watched, axis=1, kind="stable")[:, : cfg.top_genres]
        picked = np.take_along_axis(watched, best, axis=1) > 0
        gu, gg = np.nonzero(picked)[0], best[picked]
        width = src.genre_top.shape[1]
        parts.append(
            (
                np.repeat(gu, width),
                src.genre_top[gg].ravel(),
                np.repeat(src.genre_reason[gg], width),
            )
        )

    # top in country (the global list for an unknown region or a country without ratings)
    width = src.country_top.shape[1]
    parts.append(
        (
            np.repeat(np.arange(users), width),
            src.country_top[country].ravel(),
            np.repeat(src.country_reason[country], width),
        )
    )

    user, item, reason = (np.concatenate(p) for p in zip(*parts, strict=True))
    seen = distinct(ev_user * n + ev_item)
    pair = user * n + item
    keep = (item >= 0) & ~member(pair, seen)
    size = len(src.vocabulary)
    if users * n * size >= MAX_KEY:
        raise ValueError(f"a retrieval batch of {users} users is too large for {n} items")
    keys = distinct(pair[keep] * size + reason[keep])
    keys = _popular_fill(src, top_n, users, seen, keys, size)
    pair, reason = keys // size, keys % size
    # a new (user, item) pair starts at each change of pair; none when no user has a candidate
    starts = np.flatnonzero(np.r_[len(pair) > 0, pair[1:] != pair[:-1]])
    return Candidates(pair[starts] // n, pair[starts] % n, np.r_[starts, len(pair)], reason)


def _popular_fill(
    src: Sources, top_n: int, users: int, seen: np.ndarray, keys: np.ndarray, size: int
) -> np.ndarray:
    """Adds "popular_fill" keys so every user has min(top_n, unseen items) candidates: the most popular
    items the user has neither seen nor got from another source."""
    n = len(src.item_ids)
    pair = distinct(keys // size, presorted=True)
    have = np.bincount(pair // n, minlength=users)
    short = np.flatnonzero(have < top_n)
    if len(short) == 0:
        return keys
    fill = []
    for u in short:
        lo, hi = u * n, (u + 1) * n
        blocked = (
            np.concatenate(
                [
                    seen[np.searchsorted(seen, lo) : np.searchsorted(seen, hi)],
                    pair[np.searchsorted(pair, lo) : np.searchsorted(pair, hi)],
                ]
            )
            - lo
        )
        need = top_n - have[u]
        # the first need + |blocked| popular items hold at least need unblocked ones (if the catalogue does)
        head = src.popular[: need + len(blocked)]
        free = head[~np.isin(head, blocked)][:need]
        fill.append((lo + free) * size + src.fill_reason)
    return np.sort(np.concatenate([keys, *fill]))
