"""Tests of the synthetic dataset generator."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import recsys_core.datasets.generate as generate
import recsys_core.datasets.sampling as sampling
from recsys_core.columns import (
    GENRES,
    INPUT_TABLES,
    INTERACTIONS,
    ITEM_ID,
    ITEMS,
    RATING,
    TIMESTAMP,
    USER_ID,
    USERS,
)
from recsys_core.datasets.generate import END, GENRE_NAMES, START, generate_dataset
from recsys_core.io.contracts import contract
from recsys_core.io.inputs import read_input

SIZES = {"users": 200, "items": 100, "interactions": 3000}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    counts = generate_dataset(out, **SIZES, seed=42)
    return out, counts


@pytest.fixture(scope="module")
def frames(data):
    out, _ = data
    return {t: read_input(out, t).to_pandas() for t in INPUT_TABLES}


def digests(out):
    return {
        p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*.parquet"))
    }


def test_row_counts_as_returned_and_read_back(data):
    out, counts = data
    assert counts == {USERS: 200, ITEMS: 100, INTERACTIONS: 3000}
    for table in INPUT_TABLES:
        assert read_input(out, table).num_rows == counts[table]


def test_schemas_match_contracts(data):
    out, _ = data
    for table in INPUT_TABLES:
        assert read_input(out, table).schema.equals(contract(table).arrow_schema())


def test_same_seed_gives_identical_bytes(data, tmp_path):
    out, _ = data
    generate_dataset(tmp_path, **SIZES, seed=42)
    assert len(digests(out)) == len(INPUT_TABLES)
    assert digests(tmp_path) == digests(out)


def test_different_seed_gives_different_bytes(data, tmp_path):
    out, _ = data
    generate_dataset(tmp_path, **SIZES, seed=43)
    theirs, ours = digests(tmp_path), digests(out)
    assert all(theirs[name] != ours[name] for name in ours)


def test_keys_unique_and_referenced(frames):
    users, items, inter = frames[USERS], frames[ITEMS], frames[INTERACTIONS]
    assert users[USER_ID].is_unique and items[ITEM_ID].is_unique
    assert not inter.duplicated([USER_ID, ITEM_ID]).any()
    assert inter[USER_ID].isin(users[USER_ID]).all()
    assert inter[ITEM_ID].isin(items[ITEM_ID]).all()


def test_ratings_are_half_stars(frames):
    rating = frames[INTERACTIONS][RATING].to_numpy()
    assert rating.min() >= 0.5 and rating.max() <= 5.0
    assert np.all(rating * 2 == np.round(rating * 2))
    assert len(np.unique(rating)) >= 8


def test_sorted_by_user_then_time_within_range(frames):
    inter = frames[INTERACTIONS]
    assert inter[TIMESTAMP].between(START, END).all()
    assert (inter[USER_ID].diff().dropna() >= 0).all()
    same_user = inter[USER_ID].diff() == 0
    assert (inter[TIMESTAMP].diff()[same_user] >= 0).all()


def test_items_have_known_genres(frames):
    n_genres = frames[ITEMS][GENRES].map(len)
    assert n_genres.between(1, 3).all()
    assert set(frames[ITEMS][GENRES].explode()) <= set(GENRE_NAMES)


def test_some_users_are_cold(frames):
    cold = ~frames[USERS][USER_ID].isin(frames[INTERACTIONS][USER_ID])
    assert 0 < cold.sum() <= 0.05 * len(cold)


def test_popularity_is_skewed(frames):
    per_item = frames[INTERACTIONS][ITEM_ID].value_counts()
    assert per_item.iloc[: SIZES["items"] // 10].sum() > 0.3 * SIZES["interactions"]


def test_genre_taste_in_first_half_predicts_second_half(frames):
    assert_taste_predicts(frames)


def assert_taste_predicts(frames):
    """A user's average rating per genre in the first half of its history predicts the second half."""
    inter, items = frames[INTERACTIONS], frames[ITEMS]
    position = inter.groupby(USER_ID).cumcount()
    size = inter.groupby(USER_ID)[USER_ID].transform("size")
    first, second = inter[position < size // 2], inter[position >= size // 2].reset_index(drop=True)
    global_mean = first[RATING].mean()

    genres = items[[ITEM_ID, GENRES]].explode(GENRES)
    taste = (
        first.merge(genres, on=ITEM_ID).groupby([USER_ID, GENRES])[RATING].mean().rename("taste")
    )
    rows = second.reset_index().merge(genres, on=ITEM_ID).join(taste, on=[USER_ID, GENRES])
    predicted = rows.groupby("index")["taste"].mean().reindex(second.index).fillna(global_mean)

    mse_taste = np.mean((second[RATING] - predicted) ** 2)
    mse_global = np.mean((second[RATING] - global_mean) ** 2)
    assert mse_taste < 0.9 * mse_global


def test_interactions_capped_at_possible_pairs(tmp_path):
    counts = generate_dataset(tmp_path, users=5, items=3, interactions=1000, seed=1)
    inter = read_input(tmp_path, INTERACTIONS).to_pandas()
    assert counts[INTERACTIONS] == len(inter) <= 5 * 3
    assert not inter.duplicated([USER_ID, ITEM_ID]).any()


def test_chunks_are_written_as_row_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(sampling, "CHUNK_CELLS", 50 * 100)
    counts = generate_dataset(tmp_path, **SIZES, seed=42)
    inter = pq.ParquetFile(tmp_path / INTERACTIONS / "part-00000.parquet")
    assert inter.metadata.num_row_groups == 4
    assert inter.metadata.num_rows == counts[INTERACTIONS] == 3000


@pytest.mark.parametrize(
    "kwargs",
    [{"users": 0}, {"items": -1}, {"interactions": 2.5}, {"users": True}, {"items": "10"}],
)
def test_rejects_bad_sizes(tmp_path, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        generate_dataset(tmp_path, **kwargs)


# Catalogues above EXACT_MAX_ITEMS draw items with replacement and keep each user's first distinct
# ones instead of racing every cell; the tests force that path on small catalogues.


def generate_drawn(out, monkeypatch, sizes, seed=42, **constants):
    """generate_dataset on the drawn path, with module constants set for the call."""
    monkeypatch.setattr(generate, "EXACT_MAX_ITEMS", 0)
    for name, value in constants.items():
        monkeypatch.setattr(sampling, name, value)
    return generate_dataset(out, **sizes, seed=seed)


def read_frames(out):
    return {t: read_input(out, t).to_pandas() for t in INPUT_TABLES}


def per_user(inter):
    return inter.groupby(USER_ID).size()


DIST = {"users": 2000, "items": 300, "interactions": 100_000}


@pytest.fixture(scope="module")
def both_paths(tmp_path_factory):
    """The exact and the drawn path on one setup, every user drawn (none left to the race).

    Both sample the 2000 users as one chunk (index 0) of the same seed, so they share the users'
    counts and hidden tastes: only which items each user picks differs.
    """
    exact = tmp_path_factory.mktemp("exact")
    generate_dataset(exact, **DIST, seed=5)
    drawn = tmp_path_factory.mktemp("drawn")
    short = []
    with pytest.MonkeyPatch.context() as mp:
        draw = sampling.draw

        def spy(*args):
            user, item, left = draw(*args)
            short.append(int(left.sum()))
            return user, item, left

        mp.setattr(sampling, "draw", spy)
        generate_drawn(drawn, mp, DIST, seed=5, RACE_SHARE=1.0)
    assert short == [0]
    return exact, drawn


@pytest.fixture(scope="module")
def both_frames(both_paths):
    return tuple(read_frames(out) for out in both_paths)


def genre_shares(inter, items):
    """Each genre's share of the interactions, an item's weight split evenly over its genres."""
    genres = items[[ITEM_ID, GENRES]].explode(GENRES)
    weight = 1.0 / genres.groupby(ITEM_ID)[GENRES].transform("size")
    per_item = inter[ITEM_ID].value_counts()
    share = (genres[ITEM_ID].map(per_item).fillna(0) * weight).groupby(genres[GENRES]).sum()
    return share / len(inter)


def user_genre_profiles(inter, items):
    """Per user, the share of its interactions in each genre, minus the genre's overall share."""
    genres = items[[ITEM_ID, GENRES]].explode(GENRES)
    genres["w"] = 1.0 / genres.groupby(ITEM_ID)[GENRES].transform("size")
    rows = inter[[USER_ID, ITEM_ID]].merge(genres, on=ITEM_ID)
    profile = rows.pivot_table(
        index=USER_ID, columns=GENRES, values="w", aggfunc="sum", fill_value=0
    )
    profile = profile.div(per_user(inter), axis=0).reindex(columns=list(GENRE_NAMES), fill_value=0)
    return profile - profile.mean()


def distribution_gaps(exact, drawn):
    """How far the drawn path's choices are from the exact path's, on four statistics."""
    items = exact[ITEMS]
    shares = [f[INTERACTIONS][ITEM_ID].value_counts(normalize=True) for f in (exact, drawn)]
    shares = pd.concat(shares, axis=1).fillna(0).to_numpy()
    genre = genre_shares(exact[INTERACTIONS], items) - genre_shares(drawn[INTERACTIONS], items)
    a, b = (user_genre_profiles(f[INTERACTIONS], items) for f in (exact, drawn))
    return {
        "item_tv": 0.5 * np.abs(shares[:, 0] - shares[:, 1]).sum(),
        "genre_max": float(genre.abs().max()),
        "rating_mean": abs(exact[INTERACTIONS][RATING].mean() - drawn[INTERACTIONS][RATING].mean()),
        "profile_corr": float(np.corrcoef(a.to_numpy().ravel(), b.to_numpy().ravel())[0, 1]),
    }


def test_drawn_path_gives_every_user_its_count_of_distinct_items(both_paths, both_frames):
    exact, drawn = both_frames
    inter = drawn[INTERACTIONS]
    assert len(inter) == DIST["interactions"]
    assert per_user(inter).equals(per_user(exact[INTERACTIONS]))
    assert not inter.duplicated([USER_ID, ITEM_ID]).any()
    assert inter[USER_ID].between(1, DIST["users"]).all()
    assert inter[ITEM_ID].between(1, DIST["items"]).all()
    schema = contract(INTERACTIONS).arrow_schema()
    assert read_input(both_paths[1], INTERACTIONS).schema.equals(schema)


def test_drawn_path_follows_the_exact_distribution(both_frames):
    # Two exact samples of these users (same tastes, other streams) are apart by: item TV 0.018 to
    # 0.019, genre share 0.0012 to 0.0025, mean rating 0.003 to 0.009 (users' rating biases are
    # drawn anew: its noise is ~0.016), profile correlation 0.42 to 0.43; the drawn path by 0.020,
    # 0.0011, 0.026 and 0.42. Wrong samplers, measured: ignoring popularity (within a combo, in
    # the combo weights or both) gives item TV 0.23 to 0.31 and genre gaps 0.026 to 0.054;
    # ignoring affinity gives a mean rating 0.17 to 0.21 lower (users no longer pick what they
    # like), a profile correlation of 0.05 to 0.15 and genre gaps 0.0045 to 0.009.
    gaps = distribution_gaps(*both_frames)
    assert gaps["item_tv"] < 0.04, gaps
    assert gaps["genre_max"] < 0.005, gaps
    assert gaps["rating_mean"] < 0.06, gaps
    assert gaps["profile_corr"] > 0.35, gaps


def test_drawn_path_keeps_genre_taste(both_frames):
    _, drawn = both_frames
    assert_taste_predicts(drawn)


def test_drawn_path_same_seed_gives_identical_bytes(tmp_path, monkeypatch):
    # several chunks, rounds capped below what the users need, and some users racing
    small = {"SAMPLE_CHUNK_ITEMS": 800, "ROUND_DRAWS": 500, "RACE_SHARE": 0.5}
    first, second = tmp_path / "a", tmp_path / "b"
    generate_drawn(first, monkeypatch, SIZES, **small)
    generate_drawn(second, monkeypatch, SIZES, **small)
    assert len(digests(first)) == len(INPUT_TABLES)
    assert digests(first) == digests(second)
    inter = pq.ParquetFile(first / INTERACTIONS / "part-00000.parquet")
    assert inter.metadata.num_row_groups >= 4
    assert inter.metadata.num_rows == SIZES["interactions"]


@pytest.mark.parametrize(
    "constants",
    [
        {"RACE_SHARE": 0.25},  # users wanting over a quarter of the catalogue race from the start
        # none is large, but one round of one draw per item leaves some short: those race
        {"RACE_SHARE": 1.0, "MAX_ROUNDS": 1, "FIRST_DRAWS": 1.0},
    ],
)
def test_drawn_path_leaves_large_or_short_users_to_the_race(tmp_path, monkeypatch, constants):
    sizes = {"users": 30, "items": 40, "interactions": 400}
    generate_dataset(tmp_path / "exact", **sizes, seed=3)
    raced = []
    race = sampling.race

    def spy(rng, log_weight, counts):
        raced.append(len(counts))
        return race(rng, log_weight, counts)

    monkeypatch.setattr(sampling, "race", spy)
    counts = generate_drawn(tmp_path / "drawn", monkeypatch, sizes, seed=3, **constants)
    inter = read_input(tmp_path / "drawn", INTERACTIONS).to_pandas()
    expected = read_input(tmp_path / "exact", INTERACTIONS).to_pandas()
    assert 0 < sum(raced) < sizes["users"]  # some users raced, the others were drawn
    assert counts[INTERACTIONS] == len(inter) == len(expected)
    assert per_user(inter).equals(per_user(expected))
    assert not inter.duplicated([USER_ID, ITEM_ID]).any()
    assert inter[ITEM_ID].between(1, sizes["items"]).all()
