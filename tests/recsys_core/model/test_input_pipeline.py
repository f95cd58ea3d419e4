"""Streamed training examples: written chunk by chunk, read back a few row groups at a time, and the
towers trained on them as on the same rows in memory."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from recsys_core import columns as C
from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.model import input_pipeline as example_stream
from recsys_core.model.input_pipeline import (
    ArrayExamples,
    ParquetExamples,
    summarise,
    write_examples,
)
from recsys_core.model.training import fit_towers_on
from recsys_core.model.training_examples import example_chunks
from recsys_core.model.two_tower import Scaler

USER_IDS = np.array([3, 5, 8, 13, 21], dtype=np.int64)
ITEM_IDS = np.arange(100, 140, dtype=np.int64)


def interactions(n_per_user: int = 12, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        (u, i, float(rng.integers(1, 6)))
        for u in USER_IDS
        for i in rng.choice(ITEM_IDS, n_per_user, replace=False)
    ]
    return pd.DataFrame(rows, columns=[C.USER_ID, C.ITEM_ID, C.RATING])


def batches_of(frame: pd.DataFrame, size: int):
    """Batches that cut through users, so a user's interactions span several of them."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return lambda: table.to_batches(max_chunksize=size)


def collected(chunks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts = list(chunks)
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def test_every_interaction_is_one_positive_and_no_negative_is_an_interaction_of_any_batch():
    inter = interactions()
    cfg = ModelConfig(mode="classification", label="interacted", negatives=3, seed=1)
    u, i, y = collected(example_chunks(batches_of(inter, 7), USER_IDS, ITEM_IDS, cfg))
    pairs = set(zip(USER_IDS[u].tolist(), ITEM_IDS[i].tolist(), strict=True))
    positives = set(zip(USER_IDS[u[y == 1]].tolist(), ITEM_IDS[i[y == 1]].tolist(), strict=True))
    truth = set(zip(inter[C.USER_ID], inter[C.ITEM_ID], strict=True))
    assert positives == truth and (y == 1).sum() == len(inter)
    negatives = list(zip(USER_IDS[u[y == 0]].tolist(), ITEM_IDS[i[y == 0]].tolist(), strict=True))
    assert (
        not set(negatives) & truth
    )  # batches of 7 split users: the check must see all their pairs
    assert 0.5 * 3 * len(inter) < len(negatives) <= 3 * len(inter)
    assert pairs >= truth


def test_excluded_pairs_and_unknown_ids_are_left_out_and_regression_keeps_ratings():
    inter = pd.concat(
        [interactions(), pd.DataFrame({C.USER_ID: [99], C.ITEM_ID: [100], C.RATING: [4.0]})]
    )
    held = inter.iloc[:5][[C.USER_ID, C.ITEM_ID]]
    cfg = ModelConfig(mode="regression")
    u, i, y = collected(
        example_chunks(batches_of(inter, 11), USER_IDS, ITEM_IDS, cfg, exclude=held)
    )
    got = sorted(zip(USER_IDS[u].tolist(), ITEM_IDS[i].tolist(), y.tolist(), strict=True))
    kept = inter.iloc[5:-1]  # the held rows and user 99 (no features) are gone
    assert got == sorted(zip(kept[C.USER_ID], kept[C.ITEM_ID], kept[C.RATING], strict=True))


def test_no_known_pair_raises():
    inter = interactions().assign(**{C.USER_ID: 77})
    with pytest.raises(RecsysError, match="nothing to train on"):
        list(example_chunks(batches_of(inter, 10), USER_IDS, ITEM_IDS, ModelConfig()))


def test_parquet_round_trip_reads_a_bounded_number_of_rows_at_a_time(tmp_path, monkeypatch):
    monkeypatch.setattr(example_stream, "ROW_GROUP_ROWS", 50)
    rng = np.random.default_rng(3)
    chunks = [
        (rng.integers(0, 5, 120), rng.integers(0, 40, 120), rng.random(120)) for _ in range(5)
    ]
    rows = write_examples(iter(chunks), tmp_path / "ex.parquet", validation_share=0.25, seed=4)
    source = ParquetExamples(tmp_path / "ex.parquet")
    assert rows == 600 and source.file.num_row_groups == 15
    read = {v: list(source.chunks(validation=v, seed=9)) for v in (False, True)}
    assert max(len(c[0]) for c in read[False] + read[True]) <= example_stream.MIX_ROW_GROUPS * 50
    every = sorted(
        zip(
            *(np.concatenate([c[k] for c in read[False] + read[True]]).tolist() for k in range(3)),
            strict=True,
        )
    )
    written = sorted(
        zip(*(np.concatenate([c[k] for c in chunks]).tolist() for k in range(3)), strict=True)
    )
    assert [(a, b) for a, b, _ in every] == [(a, b) for a, b, _ in written]
    np.testing.assert_allclose(
        [t for *_, t in every], [t for *_, t in written], rtol=1e-6
    )  # float32 targets
    share = sum(len(c[0]) for c in read[True]) / rows
    assert 0.15 < share < 0.35
    # a new epoch seed reorders the training rows, the same seed repeats them
    again = list(source.chunks(validation=False, seed=9))
    other = list(source.chunks(validation=False, seed=10))
    assert np.array_equal(
        np.concatenate([c[0] for c in again]), np.concatenate([c[0] for c in read[False]])
    )
    assert not np.array_equal(
        np.concatenate([c[1] for c in other]), np.concatenate([c[1] for c in read[False]])
    )


def test_batch_records_hold_every_example_in_order_with_full_batches_across_chunks(tmp_path):
    rng = np.random.default_rng(5)
    chunks = [
        (rng.integers(0, 9, n), rng.integers(0, 30, n), rng.random(n)) for n in (7, 3, 12)
    ]  # 22 rows
    records, tail = example_stream.write_batches(
        iter(chunks), tmp_path / "b", batch_size=5, target=lambda y: 2 * y
    )
    assert (
        records == 4 and (tmp_path / "b").stat().st_size == 4 * 5 * 12
    )  # 20 rows in records, 2 in the tail
    raw = np.fromfile(tmp_path / "b", dtype=np.int32).reshape(4, 15)
    u = np.concatenate([raw[:, :5].ravel(), tail[0]])
    i = np.concatenate([raw[:, 5:10].ravel(), tail[1]])
    y = np.concatenate([raw[:, 10:].copy().view(np.float32).ravel(), tail[2]])
    assert u.tolist() == np.concatenate([c[0] for c in chunks]).tolist()
    assert i.tolist() == np.concatenate([c[1] for c in chunks]).tolist()
    np.testing.assert_allclose(y, 2 * np.concatenate([c[2] for c in chunks]), rtol=1e-6)


def test_the_tf_dataset_yields_the_records_then_the_short_batch_with_features_gathered(tmp_path):
    u, i = np.array([0, 1, 2, 0, 1, 2, 0]), np.array([3, 2, 1, 0, 3, 2, 1])
    source = ArrayExamples(u, i, np.arange(7, dtype=np.float32), np.zeros(7, dtype=bool))
    xu, xi = np.array([[0.0], [10.0], [20.0]]), np.array([[0.5], [1.5], [2.5], [3.5]])
    batches = list(
        example_stream.tf_dataset(source, False, tmp_path / "b", xu, xi, lambda y: y, 3, seed=None)
    )
    assert [len(y) for _, y in batches] == [3, 3, 1]
    got_u = np.concatenate([b[0][0].numpy().ravel() for b in batches])
    got_i = np.concatenate([b[0][1].numpy().ravel() for b in batches])
    assert got_u.tolist() == xu[u].ravel().tolist() and got_i.tolist() == xi[i].ravel().tolist()
    assert np.concatenate([y.numpy() for _, y in batches]).tolist() == list(range(7))


def test_weighted_scaler_equals_a_fit_on_the_materialised_rows():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 3)) * [1, 10, 100]
    rows = rng.integers(0, 6, 50)
    weighted = Scaler.fit(x, np.bincount(rows, minlength=6))
    plain = Scaler.fit(x[rows])
    np.testing.assert_allclose(weighted.mean, plain.mean)
    np.testing.assert_allclose(weighted.std, plain.std)


def match_data(n_users: int = 40, n_items: int = 30, seed: int = 0):
    """Users like items of their own category: rating 5 on a match, 1 otherwise."""
    rng = np.random.default_rng(seed)
    uc, ic = rng.integers(0, 2, n_users), rng.integers(0, 2, n_items)
    xu = np.c_[uc == 0, uc == 1, rng.normal(size=n_users)].astype(float)
    xi = np.c_[ic == 0, ic == 1, rng.normal(1990, 15, n_items)].astype(float)
    u, i = rng.integers(0, n_users, 600), rng.integers(0, n_items, 600)
    return xu, xi, u, i, np.where(uc[u] == ic[i], 5.0, 1.0)


def test_towers_trained_from_the_parquet_stream_learn_and_scale_on_training_rows_only(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(example_stream, "ROW_GROUP_ROWS", 64)  # several row groups, read in turn
    xu, xi, u, i, y = match_data()
    write_examples(
        iter([(u[:300], i[:300], y[:300]), (u[300:], i[300:], y[300:])]),
        tmp_path / "ex.parquet",
        0.2,
        5,
    )
    source = ParquetExamples(tmp_path / "ex.parquet")
    cfg = ModelConfig(
        mode="regression",
        user_layers=(16, 4),
        item_layers=(16, 4),
        epochs=15,
        batch_size=32,
        learning_rate=0.01,
        l2=0.0,
        seed=3,
    )
    model = fit_towers_on(xu, xi, source, cfg)
    summary = summarise(source, len(xu), len(xi))
    tu = np.concatenate([c[0] for c in source.chunks(validation=False)])
    np.testing.assert_allclose(
        model.user_scaler.mean, xu[tu].mean(axis=0)
    )  # weighted by occurrences
    metrics = model.meta["metrics"]
    assert (
        metrics["train_rows"] == summary.rows and metrics["validation_rows"] == 600 - summary.rows
    )
    assert metrics["val_rmse"] < 0.4 * metrics["val_rmse_global_mean"]
    assert len(metrics["loss"]) == cfg.epochs and metrics["loss"][-1] < metrics["loss"][0]
    again = fit_towers_on(xu, xi, ParquetExamples(tmp_path / "ex.parquet"), cfg)
    assert (
        again.meta["metrics"]["loss"] == metrics["loss"]
    )  # seeded: the same epochs, the same order


def test_examples_naming_rows_outside_the_feature_matrices_are_refused():
    xu, xi, u, i, y = match_data()
    source = ArrayExamples(u, np.where(i == 0, 999, i), y, np.zeros(len(y), dtype=bool))
    with pytest.raises(RecsysError, match="outside 40 users x 30 items"):
        fit_towers_on(xu, xi, source, dataclasses.replace(ModelConfig(), mode="regression"))
