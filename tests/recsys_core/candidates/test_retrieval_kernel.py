"""Direct tests of recsys_core.candidates.retrieval_kernel (the numpy kernel retrieve runs per partition):
hand-built catalogue of 8 items, 4 users, every candidate and reason computed by hand. No Spark.

The catalogue (position: id, genres, interactions, mean rating):

    0: 10 [Action]           n=5 mean 3.0
    1: 20 [Action, Comedy]   n=5 mean 4.0
    2: 30 [Comedy]           n=2 mean 4.5
    3: 40 [Drama]            n=7 mean 2.0
    4: 50 [Drama, Action]    n=2 mean 4.5   (ties 30 on n and mean: the lower id 30 first)
    5: 60 [Comedy]           n=0 (no mean)
    6: 70 [Drama]            n=1 mean 5.0
    7: 80 []                 n=0 (no mean)

popularity: 40, 20, 10, 30, 50, 70, 60, 80 (positions 3, 1, 0, 2, 4, 6, 5, 7).

Neighbor table (item: rank -> neighbor): 10: 1->20, 2->30; 20: 1->10, 2->60; 40: 1->70, 2->999
(outside the catalogue: a hole), 3->50 (beyond similar_per_item=2: dropped); 70: 2->80 only (rank 1
missing: a hole); 999 (not an item): 1->10 (ignored).

Country lists: DE [999, 80] (999 is a hole), FR [30, 60], US [80, 10, 60] (60 beyond country_items=2).

Users (batch index: country row, history most recent first):
    0: US,      10, 40, 70
    1: global,  20
    2: FR,      none
    3: DE,      none
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from recsys_core import columns as C
from recsys_core.candidates.retrieval import _batch
from recsys_core.candidates.retrieval_kernel import (
    Candidates,
    _expand,
    _pad,
    build_sources,
    candidates,
    popularity_order,
)
from recsys_core.config import RetrievalConfig

ITEM_IDS = np.array([10, 20, 30, 40, 50, 60, 70, 80])
GENRES = [
    ["Action"],
    ["Action", "Comedy"],
    ["Comedy"],
    ["Drama"],
    ["Drama", "Action"],
    ["Comedy"],
    ["Drama"],
    [],
]
N = np.array([5, 5, 2, 7, 2, 0, 1, 0])
MEAN = np.array([3.0, 4.0, 4.5, 2.0, 4.5, np.nan, 5.0, np.nan])
NEAR = [
    (10, 1, 20),
    (10, 2, 30),
    (20, 1, 10),
    (20, 2, 60),
    (40, 1, 70),
    (40, 2, 999),
    (40, 3, 50),
    (70, 2, 80),
    (999, 1, 10),
]
COUNTRY_LISTS = {"US": np.array([80, 10, 60]), "FR": np.array([30, 60]), "DE": np.array([999, 80])}

# every source sized as in the module docstring
ALL = RetrievalConfig(
    recent_items=2, similar_per_item=2, top_genres=2, items_per_genre=2, country_items=2
)
NONE = RetrievalConfig(
    recent_items=0, similar_per_item=0, top_genres=0, items_per_genre=0, country_items=0
)

DE, FR, US, GLOBAL = 0, 1, 2, 3  # rows of country_top (countries sorted, then the global list)
COUNTRY = np.array([US, GLOBAL, FR, DE])
# events: user index ascending, per user most recent first, items as catalogue positions
EV_USER = np.array([0, 0, 0, 1])
EV_ITEM = np.array([0, 3, 6, 1])  # user 0: 10, 40, 70; user 1: 20


def only(**sizes) -> RetrievalConfig:
    return RetrievalConfig(**{**NONE.__dict__, **sizes})


def sources(cfg: RetrievalConfig = ALL):
    near = tuple(np.array(col) for col in zip(*NEAR, strict=True))
    return build_sources(ITEM_IDS, GENRES, N, MEAN, near, COUNTRY_LISTS, cfg)


def run(cfg: RetrievalConfig, top_n: int = 0, country=COUNTRY, ev_user=EV_USER, ev_item=EV_ITEM):
    """{user index: {item id: reasons as strings}} of the kernel, the Sources built with the same cfg."""
    src = sources(cfg)
    got = candidates(src, cfg, top_n, np.asarray(country), np.asarray(ev_user), np.asarray(ev_item))
    return decode(src, got)


def decode(src, got: Candidates) -> dict[int, dict[int, tuple[str, ...]]]:
    # the kernel's contract: sorted by (user, item), each candidate's reason codes ascending
    keys = list(zip(got.user.tolist(), got.item.tolist(), strict=True))
    assert keys == sorted(set(keys))
    out: dict[int, dict[int, tuple[str, ...]]] = {}
    for k, (user, item) in enumerate(keys):
        codes = got.reasons[got.reason_offsets[k] : got.reason_offsets[k + 1]]
        assert list(codes) == sorted(set(codes.tolist()))
        out.setdefault(user, {})[int(src.item_ids[item])] = tuple(src.vocabulary[codes].tolist())
    assert got.reason_offsets[-1] == len(got.reasons)
    return out


# --- helpers ---------------------------------------------------------------------------------------


def test_expand_concatenates_ranges_and_skips_empty_ones():
    got = _expand(np.array([5, 9, 2, 7]), np.array([2, 0, 3, 1]))
    assert got.tolist() == [5, 6, 2, 3, 4, 7]
    assert _expand(np.array([4]), np.array([0])).tolist() == []


def test_pad_truncates_long_rows_and_fills_short_ones_with_minus_one():
    got = _pad([np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)], 2)
    assert got.tolist() == [[1, 2], [4, -1], [-1, -1]]
    assert _pad([np.array([1, 2])], 0).shape == (1, 0)


def test_popularity_order_ranks_by_count_then_mean_then_lower_id_and_a_missing_mean_last():
    assert popularity_order(N, MEAN, ITEM_IDS).tolist() == [3, 1, 0, 2, 4, 6, 5, 7]
    # same count: a missing mean (NaN) comes after any mean, even a low one; equal means: lower id first
    got = popularity_order(
        np.array([3, 3, 3, 3]), np.array([np.nan, 1.0, 1.0, 0.5]), np.array([1, 7, 4, 9])
    )
    assert got.tolist() == [2, 1, 3, 0]


# --- build_sources ---------------------------------------------------------------------------------


def test_build_sources_lays_out_genres_neighbors_countries_and_reason_codes():
    src = sources(ALL)
    assert src.popular.tolist() == [3, 1, 0, 2, 4, 6, 5, 7]
    assert src.genre_offsets.tolist() == [0, 1, 3, 4, 5, 7, 8, 9, 9]
    assert src.genre_codes.tolist() == [0, 0, 1, 1, 2, 2, 0, 1, 2]  # Action 0, Comedy 1, Drama 2
    # each genre's 2 most popular items: Action 20, 10 (50 cut); Comedy 20, 30; Drama 40, 50
    assert src.genre_top.tolist() == [[1, 0], [1, 2], [3, 4]]
    # holes: 40's rank 2 is outside the catalogue, 70 has no rank 1; 40's rank 3 is beyond 2
    assert src.neighbors.tolist() == [
        [1, 2],
        [0, 5],
        [-1, -1],
        [6, -1],
        [-1, -1],
        [-1, -1],
        [-1, 7],
        [-1, -1],
    ]
    assert src.countries.tolist() == ["DE", "FR", "US"] and src.global_row == GLOBAL
    assert src.country_top.tolist() == [
        [-1, 7],
        [2, 5],
        [7, 0],
        [3, 1],
    ]  # the global row: popular[:2]
    assert src.vocabulary.tolist() == [
        "popular_fill:all",
        "similar_to:10",
        "similar_to:20",
        "similar_to:30",
        "similar_to:40",
        "similar_to:50",
        "similar_to:60",
        "similar_to:70",
        "similar_to:80",
        "top_country:DE",
        "top_country:FR",
        "top_country:US",
        "top_genre:Action",
        "top_genre:Comedy",
        "top_genre:Drama",
        "top_global:all",
    ]
    assert src.similar_reason.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert src.genre_reason.tolist() == [12, 13, 14]
    assert src.country_reason[: GLOBAL + 1].tolist() == [9, 10, 11, 15]
    assert src.fill_reason == 0


def test_build_sources_keeps_a_genres_whole_list_in_popularity_order_padded_with_minus_one():
    src = sources(
        RetrievalConfig(
            recent_items=2, similar_per_item=2, top_genres=2, items_per_genre=4, country_items=2
        )
    )
    assert src.genre_top.tolist() == [[1, 0, 4, -1], [1, 2, 5, -1], [3, 4, 6, -1]]


def test_build_sources_refuses_ids_that_are_not_unique_and_ascending():
    near = (np.zeros(0), np.zeros(0), np.zeros(0))
    for ids in ([10, 30, 20], [10, 10, 20]):
        with pytest.raises(ValueError, match="unique and ascending"):
            build_sources(np.array(ids), [[], [], []], np.zeros(3), np.zeros(3), near, {}, ALL)


# --- each source alone -----------------------------------------------------------------------------


def test_similar_to_recent_alone_gives_the_neighbors_of_the_last_recent_items_minus_seen_and_holes():
    # user 0: recent 10, 40 -> 10's 20, 30; 40's 70 is seen and its rank 2 is a hole; 40's rank 3 (50)
    # is beyond similar_per_item. user 1: 20 -> 10, 60. Users 2 and 3 have no history.
    got = run(only(recent_items=2, similar_per_item=2))
    assert got == {
        0: {20: ("similar_to:10",), 30: ("similar_to:10",)},
        1: {10: ("similar_to:20",), 60: ("similar_to:20",)},
    }


def test_similar_to_recent_reaches_only_as_far_back_as_recent_items():
    # recent_items=3 adds user 0's third most recent item, 70, whose only neighbor is 80 (rank 2)
    assert run(only(recent_items=3, similar_per_item=2))[0] == {
        20: ("similar_to:10",),
        30: ("similar_to:10",),
        80: ("similar_to:70",),
    }
    # recent_items=1: only the newest item, 10, explains anything
    assert run(only(recent_items=1, similar_per_item=2)) == {
        0: {20: ("similar_to:10",), 30: ("similar_to:10",)},
        1: {10: ("similar_to:20",), 60: ("similar_to:20",)},
    }


def test_top_in_genres_alone_takes_the_most_watched_genres_ties_by_name_and_their_unseen_top_items():
    # user 0 watched Action once (10), Drama twice (40, 70): Drama (top 40 seen, 50), then Action
    # (top 20, 10 seen). User 1 watched 20: Action and Comedy once each, Action first by name:
    # Action (20 seen, 10), Comedy (20 seen, 30).
    got = run(only(top_genres=2, items_per_genre=2))
    assert got == {
        0: {20: ("top_genre:Action",), 50: ("top_genre:Drama",)},
        1: {10: ("top_genre:Action",), 30: ("top_genre:Comedy",)},
    }
    # one genre each: user 0 Drama (most watched), user 1 Action (the tie goes to the first name)
    assert run(only(top_genres=1, items_per_genre=2)) == {
        0: {50: ("top_genre:Drama",)},
        1: {10: ("top_genre:Action",)},
    }


def test_top_in_genres_never_picks_a_genre_the_user_did_not_watch():
    # top_genres=3: user 0 never watched Comedy and user 1 never Drama, so nothing more than with 2
    assert run(only(top_genres=3, items_per_genre=2)) == run(only(top_genres=2, items_per_genre=2))


def test_top_in_country_alone_gives_each_users_country_list_or_the_global_one_minus_seen_and_holes():
    # US [80, 10] (10 seen by user 0); global = the 2 most popular [40, 20] (20 seen by user 1);
    # FR [30, 60]; DE [999 (hole), 80]
    got = run(only(country_items=2))
    assert got == {
        0: {80: ("top_country:US",)},
        1: {40: ("top_global:all",)},
        2: {30: ("top_country:FR",), 60: ("top_country:FR",)},
        3: {80: ("top_country:DE",)},
    }


def test_popular_fill_alone_tops_each_user_up_with_the_most_popular_unseen_items():
    # popularity 40, 20, 10, 30, 50, 70, 60, 80; user 0 saw 10, 40, 70 and user 1 saw 20
    got = run(NONE, top_n=3)
    assert got == {
        0: {20: ("popular_fill:all",), 30: ("popular_fill:all",), 50: ("popular_fill:all",)},
        1: {10: ("popular_fill:all",), 30: ("popular_fill:all",), 40: ("popular_fill:all",)},
        2: {10: ("popular_fill:all",), 20: ("popular_fill:all",), 40: ("popular_fill:all",)},
        3: {10: ("popular_fill:all",), 20: ("popular_fill:all",), 40: ("popular_fill:all",)},
    }


def test_popular_fill_stops_at_the_unseen_catalogue_when_top_n_exceeds_it():
    got = run(NONE, top_n=10)
    assert sorted(got[0]) == [20, 30, 50, 60, 80]  # 8 items, 3 seen
    assert sorted(got[1]) == [10, 30, 40, 50, 60, 70, 80]
    assert sorted(got[2]) == sorted(got[3]) == ITEM_IDS.tolist()


# --- all sources merged ----------------------------------------------------------------------------


MERGED = {
    0: {
        20: ("similar_to:10", "top_genre:Action"),
        30: ("similar_to:10",),
        50: ("top_genre:Drama",),
        80: ("top_country:US",),
    },
    1: {
        10: ("similar_to:20", "top_genre:Action"),
        30: ("top_genre:Comedy",),
        40: ("top_global:all",),
        60: ("similar_to:20",),
    },
    2: {30: ("top_country:FR",), 60: ("top_country:FR",)},
    3: {80: ("top_country:DE",)},
}


def test_all_sources_merge_an_item_retrieved_twice_into_one_candidate_with_both_reasons():
    assert run(ALL, top_n=0) == MERGED


def test_candidates_arrays_hold_user_item_pairs_and_reason_offsets_exactly():
    cfg = only(recent_items=2, similar_per_item=2, top_genres=2, items_per_genre=2)
    src = sources(cfg)
    got = candidates(src, cfg, 0, COUNTRY[:1], EV_USER[:3], EV_ITEM[:3])  # user 0 alone
    assert got.user.tolist() == [0, 0, 0]
    assert got.item.tolist() == [1, 2, 4]  # 20, 30, 50
    assert got.reason_offsets.tolist() == [0, 2, 3, 4]
    assert got.reasons.tolist() == [
        1,
        12,
        1,
        14,
    ]  # similar_to:10 + top_genre:Action; similar_to:10; Drama


def test_already_seen_items_never_come_back_from_any_source():
    got = run(ALL, top_n=8)
    assert not {10, 40, 70} & set(got[0]) and 20 not in got[1]


def test_popular_fill_adds_only_new_items_and_only_as_many_as_top_n_needs():
    got = run(ALL, top_n=5)
    # user 0 has 4: popular 40 seen, 20 has one, 10 seen, 30 and 50 have one, 70 seen -> 60
    assert got[0] == {**MERGED[0], 60: ("popular_fill:all",)}
    # user 1 has 4: 40 has one, 20 seen, 10 and 30 have one -> 50
    assert got[1] == {**MERGED[1], 50: ("popular_fill:all",)}
    # no history: the country list plus the most popular items up to 5 (80 already from DE)
    assert got[2] == {
        **MERGED[2],
        10: ("popular_fill:all",),
        20: ("popular_fill:all",),
        40: ("popular_fill:all",),
    }
    assert got[3] == {
        **MERGED[3],
        10: ("popular_fill:all",),
        20: ("popular_fill:all",),
        40: ("popular_fill:all",),
        30: ("popular_fill:all",),
    }


def test_users_with_more_candidates_than_top_n_keep_all_of_them():
    got = run(ALL, top_n=1)
    assert (
        got[0] == MERGED[0] and got[1] == MERGED[1] and got[2] == MERGED[2] and got[3] == MERGED[3]
    )


def test_a_user_without_history_gets_the_global_list_and_popular_fill_only():
    got = run(ALL, top_n=3, country=[GLOBAL], ev_user=[], ev_item=[])
    assert got == {0: {40: ("top_global:all",), 20: ("top_global:all",), 10: ("popular_fill:all",)}}


def test_no_users_or_no_items_give_empty_candidates():
    src = sources(ALL)
    got = candidates(src, ALL, 5, np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
    assert (
        got.user.tolist(),
        got.item.tolist(),
        got.reason_offsets.tolist(),
        got.reasons.tolist(),
    ) == ([], [], [0], [])
    empty = build_sources(np.zeros(0), [], np.zeros(0), np.zeros(0), (np.zeros(0),) * 3, {}, ALL)
    got = candidates(empty, ALL, 5, np.array([empty.global_row]), np.zeros(0), np.zeros(0))
    assert (got.user.tolist(), got.item.tolist(), got.reason_offsets.tolist()) == ([], [], [0])


def test_a_batch_whose_users_have_seen_every_item_gives_empty_candidates():
    items = np.array([10, 20])
    src = build_sources(
        items,
        [["A"], ["B"]],
        np.array([1, 1]),
        np.array([4.0, 4.0]),
        (np.zeros(0), np.zeros(0), np.zeros(0)),
        {},
        ALL,
    )
    got = candidates(src, ALL, 5, np.array([src.global_row]), np.array([0, 0]), np.array([1, 0]))
    assert (got.user.tolist(), got.item.tolist(), got.reason_offsets.tolist()) == ([], [], [0])


# --- the caller's country mapping (retrieval._batch, pyarrow only) -------------------------------


def test_batch_maps_unknown_missing_or_listless_countries_to_the_global_list():
    # per user its users-table row (item_id null) and its interactions; user 5 is in no users row and
    # item 999 is in no catalogue: both explain nothing
    rows = [
        (1, "unknown", None),
        (1, None, 20),
        (1, None, 999),
        (2, None, None),
        (3, "JP", None),
        (4, "FR", None),
        (4, None, 30),
        (5, None, 40),
    ]
    table = pa.table(
        {
            C.USER_ID: pa.array([r[0] for r in rows], pa.int64()),
            C.COUNTRY: pa.array([r[1] for r in rows], pa.string()),
            C.ITEM_ID: pa.array([r[2] for r in rows], pa.int64()),
        }
    )
    cfg = only(country_items=2)
    src = sources(cfg)
    out = _batch(src, pa.array(src.vocabulary, pa.string()), cfg, 0, table).to_pydict()
    assert out == {
        C.USER_ID: [1, 2, 3, 4],
        C.ITEM_ID: [[40], [20, 40], [20, 40], [60]],
        C.REASONS: [
            [["top_global:all"]],
            [["top_global:all"]] * 2,
            [["top_global:all"]] * 2,
            [["top_country:FR"]],
        ],
    }
