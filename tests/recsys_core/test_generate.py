"""Tests of the synthetic dataset generator."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow.parquet as pq
import pytest

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
from recsys_core.generate import END, GENRE_NAMES, START, generate_dataset
from recsys_core.inputs import read_input
from recsys_core.schemas import contract

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
    monkeypatch.setattr("recsys_core.generate.CHUNK_CELLS", 50 * 100)
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
