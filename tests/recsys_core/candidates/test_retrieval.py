"""Tests of recsys_core.candidates.retrieval: each candidate source alone (the others sized 0) and all of them
merged, on tiny hand-computed cases, through the Spark job's retrieve and its numpy kernel."""

from __future__ import annotations

import pytest

from recsys_core import columns as C
from recsys_core.candidates.retrieval import long_form, retrieve
from recsys_core.config import RetrievalConfig

pytestmark = pytest.mark.spark

ITEMS_SCHEMA = "item_id long, title string, year int, genres array<string>"
USERS_SCHEMA = "user_id long, country string, age int, gender string"
INTERACTIONS_SCHEMA = "user_id long, item_id long, rating float, timestamp long"
NEIGHBORS_SCHEMA = "item_id long, rank int, neighbor_id long, distance double"

CFG = RetrievalConfig(
    recent_items=2, similar_per_item=2, top_genres=1, items_per_genre=2, country_items=2
)


def make_items(spark, genres_by_item: dict[int, list[str]]):
    return spark.createDataFrame(
        [(i, f"item {i}", 2000, g) for i, g in genres_by_item.items()], ITEMS_SCHEMA
    )


def make_users(spark, country_by_user: dict[int, str]):
    return spark.createDataFrame(
        [(u, c, None, None) for u, c in country_by_user.items()], USERS_SCHEMA
    )


def make_interactions(spark, rows: list[tuple[int, int, float, int]]):
    return spark.createDataFrame(rows, INTERACTIONS_SCHEMA)


def make_neighbors(spark, by_item: dict[int, list[int]]):
    """Neighbor lists in rank order (rank 1 first); the distance is the rank."""
    rows = [(i, r, n, float(r)) for i, ns in by_item.items() for r, n in enumerate(ns, start=1)]
    return spark.createDataFrame(rows, NEIGHBORS_SCHEMA)


NONE = RetrievalConfig(
    recent_items=0, similar_per_item=0, top_genres=0, items_per_genre=0, country_items=0
)


def only(**sizes) -> RetrievalConfig:
    """A config where only the named sources give candidates."""
    return RetrievalConfig(**{**NONE.__dict__, **sizes})


def candidate_rows(df) -> list[tuple[int, int, tuple[str, ...]]]:
    """Sorted (user_id, item_id, reasons) of retrieve's per-user rows; reasons keep their stored order."""
    return sorted(
        (r[C.USER_ID], item, tuple(reasons))
        for r in df.collect()
        for item, reasons in zip(r[C.ITEM_ID], r[C.REASONS], strict=True)
    )


def triples(df) -> set[tuple[int, int, str]]:
    """(user_id, item_id, reason) of every reason of every candidate."""
    return {(u, i, reason) for u, i, reasons in candidate_rows(df) for reason in reasons}


# --- similar to recent -------------------------------------------------------------------------


def test_similar_to_recent_uses_last_items_by_timestamp_ties_by_item_id_desc_and_top_ranked_neighbors(
    spark,
):
    interactions = make_interactions(
        spark,
        [
            (1, 1, 4.0, 100),  # oldest: not recent
            (1, 2, 4.0, 300),  # ties with item 3 at t=300 but loses (lower id): not recent
            (1, 3, 4.0, 300),
            (1, 4, 4.0, 200),
            (1, 5, 4.0, 400),  # newest
            (2, 1, 3.0, 50),
        ],
    )
    neighbors = make_neighbors(
        spark,
        {
            1: [11, 3, 12],
            2: [21, 22],
            3: [31, 32, 33],
            4: [41, 42],
            5: [51, 52, 53],
        },
    )
    items = make_items(
        spark,
        {i: ["Drama"] for i in [1, 2, 3, 4, 5, 11, 12, 21, 22, 31, 32, 33, 41, 42, 51, 52, 53]},
    )
    out = retrieve(
        make_users(spark, {1: "de", 2: "de"}),
        items,
        interactions,
        neighbors,
        only(recent_items=2, similar_per_item=2),
        top_n=0,
    )
    assert out.columns == [C.USER_ID, C.ITEM_ID, C.REASONS]
    assert triples(out) == {
        (1, 51, "similar_to:5"),
        (1, 52, "similar_to:5"),
        (1, 31, "similar_to:3"),
        (1, 32, "similar_to:3"),
        (2, 11, "similar_to:1"),
        (2, 3, "similar_to:1"),
    }


# --- top in genres -----------------------------------------------------------------------------


def test_top_in_genres_picks_most_watched_genre_ties_by_name_and_its_most_popular_unseen_items(
    spark,
):
    items = make_items(
        spark,
        {
            1: ["Drama"],
            2: ["Drama"],
            3: ["Drama"],
            4: ["Comedy"],
            5: ["Comedy"],
            6: ["Comedy"],
            7: ["Action"],
            8: ["Action"],
        },
    )
    interactions = make_interactions(
        spark,
        [
            # u1 watched Drama once and Comedy twice -> Comedy
            (1, 1, 1.0, 1),
            (1, 4, 3.0, 2),
            (1, 5, 3.0, 3),
            # u2 watched Drama twice and Comedy once -> Drama
            (2, 1, 1.0, 1),
            (2, 3, 5.0, 2),
            (2, 6, 3.0, 3),
            # u3 watched Drama once and Action once -> Action (tie broken by genre name)
            (3, 2, 4.0, 1),
            (3, 7, 2.0, 2),
        ],
    )
    # Drama: item 1 (n=2, mean 1.0) first on count, then item 3 (mean 5.0) beats item 2 (mean 4.0)
    # Comedy: items 4, 5, 6 all n=1, mean 3.0 -> by id; Action: 7 (n=1), then 8 (n=0)
    out = retrieve(
        make_users(spark, {1: "de", 2: "de", 3: "de"}),
        items,
        interactions,
        make_neighbors(spark, {}),
        only(top_genres=1, items_per_genre=3),
        top_n=0,
    )
    # each list minus what the user watched: u1 4, 5, 6 -> 6; u2 1, 3, 2 -> 2; u3 7, 8 -> 8
    # (had u3's tie gone to Drama, u3 would get 1 and 3)
    assert triples(out) == {
        (1, 6, "top_genre:Comedy"),
        (2, 2, "top_genre:Drama"),
        (3, 8, "top_genre:Action"),
    }
    two = retrieve(
        make_users(spark, {2: "de"}),
        items,
        interactions,
        make_neighbors(spark, {}),
        only(top_genres=2, items_per_genre=3),
        top_n=0,
    )
    # u2's second genre is Comedy: 4, 5, 6 minus 6
    assert triples(two) == {
        (2, 2, "top_genre:Drama"),
        (2, 4, "top_genre:Comedy"),
        (2, 5, "top_genre:Comedy"),
    }


# --- top in country ----------------------------------------------------------------------------


def test_top_in_country_gives_country_list_and_global_list_for_unknown_or_unrated_country(spark):
    items = make_items(spark, {i: ["Drama"] for i in range(1, 6)})
    users = make_users(spark, {1: "de", 2: "de", 3: "fr", 4: "unknown", 5: "it"})
    interactions = make_interactions(
        spark,
        [
            (1, 1, 4.0, 1),
            (1, 2, 3.0, 2),
            (2, 1, 2.0, 1),
            (2, 3, 5.0, 2),
            (3, 3, 4.0, 1),
            (3, 4, 1.0, 2),
            (4, 4, 5.0, 1),
            (4, 2, 5.0, 2),
        ],
    )
    # de: item 1 (n=2) then item 3 (mean 5.0) beats item 2 (mean 3.0); fr: items 3 and 4
    # global: every rated item has n=2 -> by mean: item 3 (4.5), item 2 (4.0)
    # u4's region is unknown; nobody in "it" rated anything -> both get the global list
    out = retrieve(
        users, items, interactions, make_neighbors(spark, {}), only(country_items=2), top_n=0
    )
    # minus what each watched: u2 and u3 watched their whole list
    assert triples(out) == {
        (1, 3, "top_country:de"),
        (4, 3, "top_global:all"),
        (5, 3, "top_global:all"),
        (5, 2, "top_global:all"),
    }


# --- popular fill ------------------------------------------------------------------------------


def test_popular_fill_tops_up_short_users_with_the_most_popular_unseen_items(spark):
    items = make_items(spark, {i: ["Drama"] for i in range(1, 7)})
    users = make_users(spark, {1: "de", 2: "de", 3: "de"})
    interactions = make_interactions(
        spark,
        [
            (1, 1, 3.0, 1),
            (1, 2, 3.0, 2),
            (2, 1, 3.0, 1),
            (9, 1, 3.0, 1),
            (9, 2, 3.0, 2),
            (9, 3, 3.0, 3),  # u9 is not a user, but counts for popularity
        ],
    )
    # popularity order: 1 (n=3), 2 (n=2), 3 (n=1), then unrated 4, 5, 6 by id
    out = retrieve(users, items, interactions, make_neighbors(spark, {}), NONE, top_n=3)
    fill = "popular_fill:all"
    assert triples(out) == {
        (1, 3, fill),
        (1, 4, fill),
        (1, 5, fill),
        (2, 2, fill),
        (2, 3, fill),
        (2, 4, fill),
        (3, 1, fill),
        (3, 2, fill),
        (3, 3, fill),
    }


# --- retrieve end to end -----------------------------------------------------------------------
#
# Catalogue: items 1, 2, 3 are Drama; 4, 5, 6 are Comedy. Users: u1 and u2 in "de", u3 unknown.
#   u1 rated 1 (t10), 4 (t20); u2 rated 2 (t10), 3 (t20), 1 (t30); u3 nothing; u9 (not a user) rated 5.
# Popularity: 1 (n=2), then n=1 by mean: 5 (5.0), 2 (4.0), 4 (4.0), 3 (3.0), then 6 (n=0).
# Sources (CFG):
#   similar: u1 recent 4, 1 -> 5, 6 (similar_to:4), 2, 3 (similar_to:1)
#            u2 recent 1, 3 -> 2, 3 (similar_to:1), 2, 1 (similar_to:3)
#   genres:  u1 Drama 1 / Comedy 1 -> Comedy -> 5, 4; u2 Drama -> 1, 2
#   country: de (u1, u2 ratings): 1 (n=2), then 2 beats 4 on id -> 1, 2; u3: global 1, 5
# After removing watched items: u1 keeps 5, 6, 2, 3; u2 keeps nothing; u3 keeps 1, 5.
# Fill to TOP_N=4: u2 gets all 3 unseen items 5, 4, 6; u3 gets 2, 4.

TOP_N = 4
WATCHED = {1: {1, 4}, 2: {1, 2, 3}, 3: set()}
CATALOGUE = {1, 2, 3, 4, 5, 6}

EXPECTED = sorted(
    [
        (1, 5, ("similar_to:4", "top_genre:Comedy")),
        (1, 6, ("similar_to:4",)),
        (1, 2, ("similar_to:1", "top_country:de")),
        (1, 3, ("similar_to:1",)),
        (2, 4, ("popular_fill:all",)),
        (2, 5, ("popular_fill:all",)),
        (2, 6, ("popular_fill:all",)),
        (3, 1, ("top_global:all",)),
        (3, 5, ("top_global:all",)),
        (3, 2, ("popular_fill:all",)),
        (3, 4, ("popular_fill:all",)),
    ]
)


def end_to_end_inputs(spark) -> tuple:
    """(users, items, interactions, neighbors) of the case above."""
    items = make_items(
        spark,
        {1: ["Drama"], 2: ["Drama"], 3: ["Drama"], 4: ["Comedy"], 5: ["Comedy"], 6: ["Comedy"]},
    )
    users = make_users(spark, {1: "de", 2: "de", 3: "unknown"})
    interactions = make_interactions(
        spark,
        [
            (1, 1, 5.0, 10),
            (1, 4, 4.0, 20),
            (2, 2, 4.0, 10),
            (2, 3, 3.0, 20),
            (2, 1, 3.0, 30),
            (9, 5, 5.0, 5),
        ],
    )
    neighbors = make_neighbors(
        spark,
        {1: [2, 3, 5], 2: [1, 3, 6], 3: [2, 1, 4], 4: [5, 6, 2], 5: [4, 6, 1], 6: [5, 4, 2]},
    )
    return users, items, interactions, neighbors


@pytest.fixture(scope="module")
def retrieved(spark):
    out = retrieve(*end_to_end_inputs(spark), CFG, TOP_N)
    return out.columns, candidate_rows(out)


def test_retrieve_returns_exactly_the_hand_computed_candidates(retrieved):
    columns, rows = retrieved
    assert columns == [C.USER_ID, C.ITEM_ID, C.REASONS]
    assert rows == EXPECTED


def test_retrieve_merges_duplicates_into_one_row_holding_every_reason_sorted(retrieved):
    _, rows = retrieved
    pairs = [(u, i) for u, i, _ in rows]
    assert len(pairs) == len(set(pairs))
    reasons = {(u, i): r for u, i, r in rows}
    # item 5 came from similar_to_recent and top_in_genres, item 2 from similar_to_recent and country
    assert reasons[(1, 5)] == ("similar_to:4", "top_genre:Comedy")
    assert reasons[(1, 2)] == ("similar_to:1", "top_country:de")
    assert all(list(r) == sorted(r) for r in reasons.values())


def test_retrieve_never_returns_items_the_user_already_interacted_with(retrieved):
    _, rows = retrieved
    assert [(u, i) for u, i, _ in rows if i in WATCHED[u]] == []


def test_retrieve_returns_only_users_of_the_users_table(retrieved):
    _, rows = retrieved
    # u9 rated item 5 and would get item 4 (similar_to:5) and Comedy items, but is not a user
    assert {u for u, _, _ in rows} == {1, 2, 3}


def test_retrieve_tops_up_users_short_of_top_n_to_exactly_top_n_with_popular_fill(retrieved):
    _, rows = retrieved
    u3 = [(i, r) for u, i, r in rows if u == 3]
    assert len(u3) == TOP_N
    # the country source gave 2; the fill adds the 2 most popular items not already candidates
    assert sorted(i for i, r in u3 if r == ("popular_fill:all",)) == [2, 4]


def test_retrieve_gives_every_unseen_item_when_the_catalogue_has_fewer_unseen_items_than_top_n(
    retrieved,
):
    _, rows = retrieved
    u2 = sorted(i for u, i, _ in rows if u == 2)
    assert u2 == sorted(CATALOGUE - WATCHED[2])  # 3 items < TOP_N


def test_retrieve_gives_every_user_at_least_min_top_n_and_unseen_catalogue_items(retrieved):
    _, rows = retrieved
    for user, watched in WATCHED.items():
        count = sum(1 for u, _, _ in rows if u == user)
        assert count >= min(TOP_N, len(CATALOGUE - watched)), user


def test_retrieve_never_returns_items_outside_the_catalogue(spark):
    items = make_items(spark, {1: ["Drama"], 2: ["Drama"], 3: ["Comedy"], 4: ["Comedy"]})
    users = make_users(spark, {1: "de"})
    interactions = make_interactions(
        spark,
        [
            (1, 1, 4.0, 10),
            (1, 99, 5.0, 50),  # item 99 left the catalogue: it is not a recent item of u1
            (2, 99, 5.0, 1),
            (2, 88, 5.0, 2),  # heavy ratings of removed items: not popular
        ],
    )
    # a stale neighbor table: item 1's nearest item 77 and item 99 are not in the catalogue
    neighbors = make_neighbors(spark, {1: [77, 2], 2: [1, 3], 99: [3, 4]})
    out = retrieve(users, items, interactions, neighbors, CFG, top_n=3)
    # similar_to:1 -> 2 (77 dropped); Drama -> 1 (seen), 2; de -> 1 (seen);
    # fill from popularity 1, 2, 3, 4 -> 3, 4
    assert candidate_rows(out) == [
        (1, 2, ("similar_to:1", "top_genre:Drama")),
        (1, 3, ("popular_fill:all",)),
        (1, 4, ("popular_fill:all",)),
    ]


def test_retrieve_gives_the_same_candidates_when_users_span_arrow_batches(spark, retrieved):
    # 2-row Arrow batches and kernel runs of 3 rows cut through users: whole_users must re-join them
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    before = spark.conf.get(key)
    spark.conf.set(key, "2")
    try:
        out = retrieve(*end_to_end_inputs(spark), CFG, TOP_N, partitions=1, kernel_rows=3)
        rows = candidate_rows(out)
    finally:
        spark.conf.set(key, before)
    assert rows == retrieved[1]


def test_retrieve_lists_each_users_candidates_by_ascending_item_id(spark):
    items = make_items(spark, {i: ["Drama"] for i in range(1, 9)})
    users = make_users(spark, {1: "de", 2: "unknown"})
    interactions = make_interactions(spark, [(2, i, float(i % 5), i) for i in (8, 3, 6)])
    out = retrieve(
        users, items, interactions, make_neighbors(spark, {}), only(country_items=5), top_n=5
    ).collect()
    # global list by popularity: 3 and 8 (mean 3.0, by id), 6 (mean 1.0), then unrated 1, 2;
    # u2 watched 3, 6, 8 and is filled with 4, 5, 7
    assert {r[C.USER_ID]: list(r[C.ITEM_ID]) for r in out} == {
        1: [1, 2, 3, 6, 8],
        2: [1, 2, 4, 5, 7],
    }


def test_long_form_has_one_row_per_candidate():
    import pandas as pd

    per_user = pd.DataFrame(
        {
            C.USER_ID: [1, 2, 3],
            C.ITEM_ID: [[5, 7], [], [2]],
            C.REASONS: [[["a"], ["b", "c"]], [], [["d"]]],
        }
    )
    out = long_form(per_user)
    assert out.values.tolist() == [[1, 5, ["a"]], [1, 7, ["b", "c"]], [3, 2, ["d"]]]
