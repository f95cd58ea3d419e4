"""Tests of nearest-item search by squared embedding distance (SEED.md "Finding related items")."""

from __future__ import annotations

import numpy as np
import pytest

from recsys_core.candidates.similarity import neighbors_dataframe, top_k_neighbors


def brute_force(emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full sort of the exact pairwise squared distances, self excluded, ties by lower index."""
    e = np.asarray(emb, dtype=np.float64)
    n = len(e)
    d2 = ((e[:, None, :] - e[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(d2, np.inf)
    kk = min(k, n - 1)
    idx = np.array([np.lexsort((np.arange(n), d2[i]))[:kk] for i in range(n)]).reshape(n, kk)
    return idx, np.take_along_axis(d2, idx, axis=1)


def test_points_on_a_line_give_hand_computed_neighbors_and_squared_distances():
    emb = np.array([[0.0], [1.0], [3.0], [7.0]])
    idx, d2 = top_k_neighbors(emb, k=2)
    assert idx.tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]
    assert d2.tolist() == [[1.0, 9.0], [1.0, 4.0], [4.0, 9.0], [16.0, 36.0]]


def test_points_in_the_plane_give_hand_computed_neighbors_and_squared_distances():
    emb = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    idx, d2 = top_k_neighbors(emb, k=2)
    assert idx.tolist() == [[1, 2], [0, 2], [0, 1], [2, 1]]
    assert d2.tolist() == [[1.0, 4.0], [1.0, 5.0], [4.0, 5.0], [10.0, 13.0]]


def test_a_row_is_never_its_own_neighbor_even_with_identical_copies():
    emb = np.zeros((5, 3))  # every pair at distance 0, self included
    idx, d2 = top_k_neighbors(emb, k=4)
    for row in range(5):
        assert row not in idx[row]
        assert sorted(idx[row].tolist()) == [r for r in range(5) if r != row]
    assert (d2 == 0).all()


def test_ties_are_broken_by_lower_index_also_at_the_kth_position():
    # 0 is at distance 1 from both 1 and -1: with k=1 the lower index (1) must win
    idx, d2 = top_k_neighbors(np.array([[0.0], [1.0], [-1.0]]), k=1)
    assert idx.tolist() == [[1], [0], [0]]
    assert d2.tolist() == [[1.0], [1.0], [1.0]]
    # four copies of 0 and one 5: the copies' nearest are the other copies, lowest indices first
    idx, d2 = top_k_neighbors(np.array([[5.0], [0.0], [0.0], [0.0], [0.0]]), k=1)
    assert idx.tolist() == [[1], [2], [1], [1], [1]]
    idx, d2 = top_k_neighbors(np.array([[5.0], [0.0], [0.0], [0.0], [0.0]]), k=2)
    assert idx.tolist() == [[1, 2], [2, 3], [1, 3], [1, 2], [1, 2]]
    assert d2.tolist() == [[25.0, 25.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]


def test_k_larger_than_n_minus_one_returns_n_minus_one_columns():
    emb = np.array([[0.0], [1.0], [3.0], [7.0]])
    idx, d2 = top_k_neighbors(emb, k=10)
    assert idx.shape == d2.shape == (4, 3)
    assert idx.tolist() == [[1, 2, 3], [0, 2, 3], [1, 0, 3], [2, 1, 0]]
    idx, d2 = top_k_neighbors(np.array([[1.0, 2.0]]), k=3)
    assert idx.shape == d2.shape == (1, 0)


@pytest.mark.parametrize("block", [1, 3, 2048])
def test_equals_a_brute_force_full_sort_on_tie_heavy_integer_data(block):
    rng = np.random.default_rng(7)
    for n, d, k in [(30, 2, 5), (17, 1, 4), (25, 3, 24), (12, 2, 40)]:
        emb = rng.integers(-2, 3, size=(n, d)).astype(np.float32)  # exact in float32, many ties
        idx, d2 = top_k_neighbors(emb, k, block=block)
        ref_idx, ref_d2 = brute_force(emb, k)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(d2, ref_d2)


@pytest.mark.parametrize("block", [1, 3, 2048])
def test_equals_a_brute_force_full_sort_on_continuous_random_data(block):
    emb = np.random.default_rng(3).normal(size=(60, 4)).astype(np.float32)
    idx, d2 = top_k_neighbors(emb, 7, block=block)
    ref_idx, ref_d2 = brute_force(emb, 7)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(d2, ref_d2, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "n, d, k, integer", [(2000, 2, 10, True), (3001, 8, 10, False), (1500, 3, 100, True)]
)
def test_the_two_stage_selection_equals_a_full_sort_on_catalogues_of_many_groups(n, d, k, integer):
    """Large enough that only k of the n / 64 column groups are examined per row; integer data in a
    small range makes ties at the k-th distance common, which must fall back to the exact row."""
    rng = np.random.default_rng(n)
    emb = (rng.integers(-4, 5, size=(n, d)) if integer else rng.normal(size=(n, d))).astype(
        np.float32
    )
    idx, d2 = top_k_neighbors(emb, k, block=512)
    e = emb.astype(np.float64)
    exact = (e * e).sum(1)[:, None] + (e * e).sum(1)[None, :] - 2 * e @ e.T
    np.fill_diagonal(exact, np.inf)
    ref = np.array([np.lexsort((np.arange(n), exact[i]))[:k] for i in range(n)])
    if integer:
        np.testing.assert_array_equal(idx, ref)
    else:  # float32 rounding may swap near-equal neighbors: compare the distances reached
        assert (idx == ref).mean() > 0.999
    np.testing.assert_allclose(d2, np.take_along_axis(exact, idx, axis=1), rtol=1e-4, atol=1e-4)


def test_a_subset_of_queries_equals_the_corresponding_rows_of_the_full_result():
    emb = np.random.default_rng(5).integers(-3, 4, size=(40, 3)).astype(np.float32)
    full_idx, full_d2 = top_k_neighbors(emb, 6)
    queries = np.array([39, 0, 17, 17, 5])
    for block in (1, 2, 2048):
        idx, d2 = top_k_neighbors(emb, 6, queries=queries, block=block)
        np.testing.assert_array_equal(idx, full_idx[queries])
        np.testing.assert_array_equal(d2, full_d2[queries])


@pytest.mark.spark
def test_neighbors_dataframe_equals_top_k_neighbors_mapped_to_item_ids(spark):
    item_ids = np.array([101, 205, 307, 409, 511, 613, 715])
    emb = np.random.default_rng(11).integers(-2, 3, size=(7, 2)).astype(np.float32)
    k = 3
    got = (
        neighbors_dataframe(spark, item_ids, emb, k, block=3)  # 3 partitions of query items
        .toPandas()
        .sort_values(["item_id", "rank"])
        .reset_index(drop=True)
    )
    idx, d2 = top_k_neighbors(emb, k)
    expected = [
        (int(item_ids[q]), r + 1, int(item_ids[idx[q, r]]), float(d2[q, r]))
        for q in range(len(item_ids))
        for r in range(k)
    ]
    assert list(got.columns) == ["item_id", "rank", "neighbor_id", "distance"]
    actual = [
        (int(a), int(b), int(c), float(d))
        for a, b, c, d in got[["item_id", "rank", "neighbor_id", "distance"]].itertuples(
            index=False
        )
    ]
    assert actual == expected
    assert got.groupby("item_id")["rank"].apply(list).tolist() == [[1, 2, 3]] * len(item_ids)


def test_a_small_memory_budget_shrinks_the_block_but_not_the_result():
    emb = np.random.default_rng(8).integers(-3, 4, size=(700, 3)).astype(np.float32)
    idx, d2 = top_k_neighbors(emb, 9)
    # 704 padded columns x 4 bytes: a 1 MB budget allows 372 query rows per block, so two blocks
    small_idx, small_d2 = top_k_neighbors(emb, 9, memory_mb=1)
    np.testing.assert_array_equal(small_idx, idx)
    np.testing.assert_array_equal(small_d2, d2)


def test_the_memory_budget_bounds_the_peak_allocation():
    import tracemalloc

    emb = np.random.default_rng(9).normal(size=(5000, 8)).astype(np.float32)
    peaks = {}
    for budget in (1, 256):
        tracemalloc.start()
        top_k_neighbors(emb, 10, memory_mb=budget)
        peaks[budget] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    assert peaks[1] < 5  # a 1 MB score buffer plus the inputs and outputs
    assert peaks[256] > 15  # 1024 query rows x 5056 columns x 4 bytes = 20 MB
