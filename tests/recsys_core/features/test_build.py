"""Tests of recsys_core.features.build on tiny hand-built tables with hand-computed expected values.

Catalogue (years 1994, 2000, missing, 2015 -> mean year 2003):
    item 10  Drama, Sci-Fi   rated by u1 (4.0)                      -> n=1, mean 4.0
    item 20  Comedy          rated by u1 (3.0), u2 (4.5), u9 (1.5)  -> n=3, mean 3.0
    item 30  Drama           rated by u1 (5.0), u2 (2.0)            -> n=2, mean 3.5
    item 40  (no genres)     never rated                            -> global mean, n=0
Global mean rating: (4 + 3 + 5 + 4.5 + 2 + 1.5) / 6 = 20 / 6.
u9 is not in the users table: its rating counts for the items but it gets no feature row.
"""

from __future__ import annotations

import math

import pytest

from recsys_core import columns as C
from recsys_core.features.build import genre_vocabulary, item_features, user_features
from recsys_core.features.names import genre_column

pytestmark = pytest.mark.spark

ITEMS_SCHEMA = "item_id long, title string, year int, genres array<string>"
USERS_SCHEMA = "user_id long, country string, age int, gender string"
INTERACTIONS_SCHEMA = "user_id long, item_id long, rating float, timestamp long"

GENRES = ["Comedy", "Drama", "Sci-Fi"]
GLOBAL_MEAN = 20.0 / 6.0


@pytest.fixture(scope="module")
def items(spark):
    return spark.createDataFrame(
        [
            (10, "Ten", 1994, ["Drama", "Sci-Fi"]),
            (20, "Twenty", 2000, ["Comedy"]),
            (30, "Thirty", None, ["Drama"]),
            (40, "Forty", 2015, []),
        ],
        ITEMS_SCHEMA,
    )


@pytest.fixture(scope="module")
def interactions(spark):
    return spark.createDataFrame(
        [
            (1, 10, 4.0, 100),
            (1, 20, 3.0, 200),
            (1, 30, 5.0, 300),
            (2, 20, 4.5, 250),
            (2, 30, 2.0, 350),
            (9, 20, 1.5, 50),
        ],
        INTERACTIONS_SCHEMA,
    )


@pytest.fixture(scope="module")
def users(spark):
    # ages 30, missing, 50 -> mean age 40
    return spark.createDataFrame(
        [(1, "de", 30, "M"), (2, "fr", None, "F"), (3, "unknown", 50, None)], USERS_SCHEMA
    )


def by_key(df, key):
    return {row[key]: row.asDict() for row in df.collect()}


@pytest.fixture(scope="module")
def item_out(items, interactions):
    """(columns, rows by item_id) of item_features, computed once for the module."""
    df = item_features(items, interactions, GENRES)
    return df.columns, by_key(df, C.ITEM_ID)


@pytest.fixture(scope="module")
def user_out(users, interactions, items):
    """(columns, rows by user_id) of user_features, computed once for the module."""
    df = user_features(users, interactions, items, GENRES)
    return df.columns, by_key(df, C.USER_ID)


# --- genre names -------------------------------------------------------------------------------


def test_genre_vocabulary_is_sorted_distinct_and_drops_empty_and_null_genres(spark):
    items = spark.createDataFrame(
        [
            (1, "a", 2000, ["Sci-Fi", "Drama"]),
            (2, "b", 2000, ["", "Comedy"]),
            (3, "c", 2000, []),
            (4, "d", 2000, ["Drama", None]),
        ],
        ITEMS_SCHEMA,
    )
    assert genre_vocabulary(items) == ["Comedy", "Drama", "Sci-Fi"]


@pytest.mark.parametrize(
    ("prefix", "genre", "expected"),
    [
        ("g_", "Sci-Fi", "g_sci_fi"),
        ("ug_", "Sci-Fi", "ug_sci_fi"),
        ("g_", "Film-Noir", "g_film_noir"),
        ("g_", "(no genres listed)", "g_no_genres_listed"),
        ("g_", "Children's", "g_children_s"),
        ("g_", "Drama", "g_drama"),
    ],
)
def test_genre_column_is_prefixed_lowercase_and_sql_safe(prefix, genre, expected):
    assert genre_column(prefix, genre) == expected


# --- item features -----------------------------------------------------------------------------


def test_item_features_have_one_row_per_item_with_the_expected_columns(item_out):
    columns, rows = item_out
    assert columns == [
        C.ITEM_ID,
        C.YEAR,
        C.YEAR_MISSING,
        C.AVG_RATING,
        C.RATING_COUNT,
        C.RATED_AT,
        "g_comedy",
        "g_drama",
        "g_sci_fi",
    ]
    assert sorted(rows) == [10, 20, 30, 40]


def test_item_features_missing_year_becomes_catalogue_mean_year_and_is_flagged(item_out):
    rows = item_out[1]
    assert {i: (r[C.YEAR], r[C.YEAR_MISSING]) for i, r in rows.items()} == {
        10: (1994.0, 0.0),
        20: (2000.0, 0.0),
        30: (2003.0, 1.0),  # (1994 + 2000 + 2015) / 3
        40: (2015.0, 0.0),
    }


def test_item_features_avg_rating_and_log1p_rating_count(item_out):
    rows = item_out[1]
    assert rows[10][C.AVG_RATING] == pytest.approx(4.0)
    assert rows[20][C.AVG_RATING] == pytest.approx(3.0)  # (3.0 + 4.5 + 1.5) / 3, u9 included
    assert rows[30][C.AVG_RATING] == pytest.approx(3.5)
    assert rows[10][C.RATING_COUNT] == pytest.approx(math.log1p(1))
    assert rows[20][C.RATING_COUNT] == pytest.approx(math.log1p(3))
    assert rows[30][C.RATING_COUNT] == pytest.approx(math.log1p(2))


def test_item_features_unrated_item_gets_global_mean_rating_and_zero_count(item_out):
    rows = item_out[1]
    assert rows[40][C.AVG_RATING] == pytest.approx(GLOBAL_MEAN)
    assert rows[40][C.RATING_COUNT] == 0.0


def test_item_features_genre_one_hot_matches_each_items_genres(item_out):
    rows = item_out[1]
    one_hot = {i: (r["g_comedy"], r["g_drama"], r["g_sci_fi"]) for i, r in rows.items()}
    assert one_hot == {
        10: (0.0, 1.0, 1.0),
        20: (1.0, 0.0, 0.0),
        30: (0.0, 1.0, 0.0),
        40: (0.0, 0.0, 0.0),
    }


# --- user features -----------------------------------------------------------------------------


def test_user_features_have_one_row_per_user_of_the_users_table_with_the_expected_columns(
    user_out,
):
    columns, rows = user_out
    assert columns == [
        C.USER_ID,
        C.AVG_RATING,
        C.RATING_COUNT,
        C.ACTIVE_AT,
        C.LAST_ACTIVE_AT,
        C.TASTE_POPULARITY,
        C.TASTE_YEAR,
        C.AGE,
        C.AGE_MISSING,
        "gender_m",
        "gender_f",
        "ug_comedy",
        "ug_drama",
        "ug_sci_fi",
        "us_comedy",
        "us_drama",
        "us_sci_fi",
    ]
    # u9 rated items but is not a user: no row for it
    assert sorted(rows) == [1, 2, 3]


def test_user_features_per_genre_average_rating_with_zero_for_unrated_genres(user_out):
    rows = user_out[1]
    per_genre = {u: (r["ug_comedy"], r["ug_drama"], r["ug_sci_fi"]) for u, r in rows.items()}
    assert per_genre == {
        1: (3.0, 4.5, 4.0),  # comedy: item 20; drama: (4.0 + 5.0) / 2; sci-fi: item 10
        2: (4.5, 2.0, 0.0),  # never rated a sci-fi item
        3: (0.0, 0.0, 0.0),
    }


def test_user_features_avg_rating_and_log1p_rating_count(user_out):
    rows = user_out[1]
    assert rows[1][C.AVG_RATING] == pytest.approx(4.0)
    assert rows[2][C.AVG_RATING] == pytest.approx(3.25)
    assert rows[1][C.RATING_COUNT] == pytest.approx(math.log1p(3))
    assert rows[2][C.RATING_COUNT] == pytest.approx(math.log1p(2))


def test_user_features_user_without_interactions_gets_global_mean_and_zero_count(user_out):
    rows = user_out[1]
    assert rows[3][C.AVG_RATING] == pytest.approx(GLOBAL_MEAN)
    assert rows[3][C.RATING_COUNT] == 0.0


def test_user_features_missing_age_becomes_mean_age_and_is_flagged(user_out):
    rows = user_out[1]
    assert {u: (r[C.AGE], r[C.AGE_MISSING]) for u, r in rows.items()} == {
        1: (30.0, 0.0),
        2: (40.0, 1.0),  # (30 + 50) / 2
        3: (50.0, 0.0),
    }


def test_user_features_gender_one_hot_is_zero_for_unknown_gender(user_out):
    rows = user_out[1]
    assert {u: (r["gender_m"], r["gender_f"]) for u, r in rows.items()} == {
        1: (1.0, 0.0),
        2: (0.0, 1.0),
        3: (0.0, 0.0),
    }


def test_user_features_work_without_age_and_gender_columns(users, interactions, items, user_out):
    bare = users.select(C.USER_ID, C.COUNTRY)
    out = user_features(bare, interactions, items, GENRES)
    full_columns, full = user_out
    rows = by_key(out, C.USER_ID)
    assert out.columns == full_columns
    assert sorted(rows) == [1, 2, 3]
    # every age is missing, so every user is flagged and gets the same filler age
    assert {r[C.AGE_MISSING] for r in rows.values()} == {1.0}
    assert len({r[C.AGE] for r in rows.values()}) == 1
    assert {(r["gender_m"], r["gender_f"]) for r in rows.values()} == {(0.0, 0.0)}
    # the behavioural features do not depend on the demographic columns
    behaviour = [C.AVG_RATING, C.RATING_COUNT, "ug_comedy", "ug_drama", "ug_sci_fi"]
    for user_id, row in rows.items():
        assert {k: row[k] for k in behaviour} == {k: full[user_id][k] for k in behaviour}


YEAR_SECONDS = 365.25 * 86400
MEAN_TIMESTAMP = (100 + 200 + 300 + 250 + 350 + 50) / 6


def test_item_rated_at_is_the_mean_interaction_time_in_years(item_out):
    rows = item_out[1]
    assert rows[10][C.RATED_AT] == pytest.approx(100 / YEAR_SECONDS)
    assert rows[20][C.RATED_AT] == pytest.approx((200 + 250 + 50) / 3 / YEAR_SECONDS)
    assert rows[40][C.RATED_AT] == pytest.approx(
        MEAN_TIMESTAMP / YEAR_SECONDS
    )  # never rated: the global mean


def test_user_genre_share_is_the_share_of_the_users_interactions_in_each_genre(user_out):
    rows = user_out[1]
    shares = {u: (r["us_comedy"], r["us_drama"], r["us_sci_fi"]) for u, r in rows.items()}
    assert shares[1] == pytest.approx((1 / 3, 2 / 3, 1 / 3))  # item 10 is Drama and Sci-Fi
    assert shares[2] == pytest.approx((0.5, 0.5, 0.0))
    assert shares[3] == (0.0, 0.0, 0.0)


def test_user_activity_times_and_taste_profile(user_out):
    rows = user_out[1]
    assert rows[1][C.ACTIVE_AT] == pytest.approx(200 / YEAR_SECONDS)
    assert rows[1][C.LAST_ACTIVE_AT] == pytest.approx(300 / YEAR_SECONDS)
    assert rows[2][C.LAST_ACTIVE_AT] == pytest.approx(350 / YEAR_SECONDS)
    assert (
        rows[3][C.ACTIVE_AT]
        == rows[3][C.LAST_ACTIVE_AT]
        == pytest.approx(MEAN_TIMESTAMP / YEAR_SECONDS)
    )
    # popularity of the chosen items: log1p of their counts (u9's rating counts for item 20)
    pop = {10: math.log1p(1), 20: math.log1p(3), 30: math.log1p(2)}
    assert rows[1][C.TASTE_POPULARITY] == pytest.approx((pop[10] + pop[20] + pop[30]) / 3)
    assert rows[2][C.TASTE_POPULARITY] == pytest.approx((pop[20] + pop[30]) / 2)
    assert rows[3][C.TASTE_POPULARITY] == pytest.approx((pop[10] + 3 * pop[20] + 2 * pop[30]) / 6)
    # release years of the chosen items; item 30 has none and is left out of the mean
    assert rows[1][C.TASTE_YEAR] == pytest.approx(1997.0)
    assert rows[2][C.TASTE_YEAR] == pytest.approx(2000.0)
    assert rows[3][C.TASTE_YEAR] == pytest.approx((1994 + 3 * 2000) / 4)


def test_feature_tables_contain_no_nulls(user_out, item_out):
    for _, rows in (user_out, item_out):
        for row in rows.values():
            assert None not in row.values(), row
