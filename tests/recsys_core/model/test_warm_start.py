"""Warm-started nightly training: when it starts from the blessed model and when it retrains in full,
and what it keeps of the blessed model (weights, scalers, known ids' vectors) and trains on."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses

import numpy as np
import pytest

from recsys_core import columns as C
from recsys_core.errors import RecsysError
from recsys_core.model.registry import write_blessed
from recsys_core.model.softmax_training import fit_softmax_towers
from recsys_core.model.two_tower import TwoTowerModel
from recsys_core.model.warm_start import (
    WarmStart,
    copy_weights,
    grown_vocabulary,
    plan_training,
    replay_rows,
)
from tests.recsys_core.model.test_softmax_towers import SMALL, item_vectors, synthetic

CFG = dataclasses.replace(SMALL, epochs=2)
DS, BLESSED_DS = "2026-01-31", "2026-01-30"


@pytest.fixture(scope="module")
def data():
    return synthetic(content=1.0)[:3]


@pytest.fixture(scope="module")
def blessed(data, tmp_path_factory):
    """A model trained on the older half of the interactions, saved and blessed for BLESSED_DS."""
    users, items, inter = data
    older = inter[inter[C.TIMESTAMP] < 1040]
    model = fit_softmax_towers(users, items, older, CFG)
    model.meta["training"]["full_retrain_ds"] = BLESSED_DS
    models = tmp_path_factory.mktemp("models")
    model.save(models / "m1")
    write_blessed(models, {"version": "m1", "path": str(models / "m1"), "ds": BLESSED_DS})
    return models, TwoTowerModel.load(models / "m1")


def columns(model):
    return model.user_columns, model.item_columns


def test_a_compatible_blessed_model_of_an_earlier_ds_is_warm_started(blessed):
    models, model = blessed
    plan = plan_training(models, DS, CFG, *columns(model))
    assert plan.kind == "warm" and plan.warm is not None and "from m1" in plan.reason
    assert plan.warm.since == 1030  # the newest timestamp the blessed model trained on
    assert plan.warm.full_retrain_ds == BLESSED_DS
    # what may change from night to night without a full retrain
    assert plan_training(
        models, DS, dataclasses.replace(CFG, epochs=1, seed=9, warm_epochs=2), *columns(model)
    ).warm


@pytest.mark.parametrize(
    ("change", "ds", "reason"),
    [
        ({"full_retrain_days": 0}, DS, "every night a full retrain"),
        (
            {"full_retrain_days": 7},
            "2026-02-06",
            "last full retrain was on 2026-01-30, 7 days before",
        ),
        ({}, BLESSED_DS, "not before 2026-01-30"),  # a rerun of the blessed model's ds
        ({}, "2026-01-29", "not before 2026-01-29"),  # a backfill of an older ds
        ({"tune": True}, DS, "settings search"),
        (
            {"history_half_life": 3.0},
            DS,
            "settings changed since the blessed model: history_half_life",
        ),
        ({"user_layers": (32, 8)}, DS, "settings changed since the blessed model: user_layers"),
        ({"mode": "regression"}, DS, "model.mode regression"),
    ],
)
def test_full_retrain_when_a_warm_start_would_be_wrong_and_the_reason_says_why(
    blessed, change, ds, reason
):
    models, model = blessed
    plan = plan_training(models, ds, dataclasses.replace(CFG, **change), *columns(model))
    assert plan.kind == "full" and plan.warm is None and reason in plan.reason, plan.reason


def test_full_retrain_without_a_blessed_model_or_with_other_feature_columns(blessed, tmp_path):
    models, model = blessed
    assert "no blessed model" in plan_training(tmp_path, DS, CFG, *columns(model)).reason
    ucols, icols = columns(model)
    plan = plan_training(models, DS, CFG, [*ucols, "u_new"], icols)
    assert plan.kind == "full" and "feature columns changed" in plan.reason


def test_the_grown_network_starts_with_the_blessed_weights_and_known_ids_keep_their_vectors(
    blessed, data
):
    """Before any step, the network copied into a larger vocabulary embeds every item the blessed model
    knew exactly as it did; a new item is placed by its content and its fresh id vector."""
    from recsys_core.model.network import build_softmax_model

    _, model = blessed
    users, items, _ = data
    warm = WarmStart(model, "m1", 1030, BLESSED_DS)
    new_item = items[C.ITEM_ID].max() + 1
    vocab = grown_vocabulary(warm, model.vocabulary.user_ids, np.r_[50, new_item])
    assert (
        len(vocab.item_ids) == len(model.vocabulary.item_ids) + 2
    )  # 50 sorts before every known id
    net = build_softmax_model(2, 2, len(vocab.user_ids) + 1, len(vocab.item_ids) + 1, CFG)
    copy_weights(net, model, vocab)
    grown = dataclasses.replace(model, keras_model=net, vocabulary=vocab)
    np.testing.assert_allclose(item_vectors(grown, items), item_vectors(model, items), atol=1e-6)
    table = net.get_layer("item_ids").get_weights()[0]
    old = model.keras_model.get_layer("item_ids").get_weights()[0]
    np.testing.assert_array_equal(table[vocab.item_index(model.vocabulary.item_ids)], old[1:])
    assert not np.allclose(table[vocab.item_index([50])], old[1])  # a fresh row, not a shifted one


def test_a_warm_start_trains_on_the_new_interactions_and_a_seeded_replay_of_the_older(
    blessed, data
):
    _, model = blessed
    users, items, inter = data
    warm = WarmStart(model, "m1", 1030, BLESSED_DS)
    cfg = dataclasses.replace(CFG, replay_share=0.25, validation_share=0.0)
    out = fit_softmax_towers(users, items, inter, cfg, warm)
    training = out.meta["training"]
    new = int((inter[C.TIMESTAMP] > 1030).sum())
    assert training["kind"] == "warm" and training["parent"] == "m1"
    # Adam resumed where the blessed model's training ended (saved beside it as optimizer.npz)
    assert training["optimizer_resumed"] is True
    assert int(out.optimizer_state["iterations"]) > int(model.optimizer_state["iterations"])
    assert training["new_rows"] == new and training["trained_until"] == inter[C.TIMESTAMP].max()
    older = len(inter) - new
    assert new + 0.1 * older < out.meta["metrics"]["train_rows"] < new + 0.4 * older
    # the throughput counts the warm passes' examples: one Adam step per batch of them
    train_rows = out.meta["metrics"]["train_rows"]
    assert training["examples"] == train_rows * cfg.warm_epochs
    steps = int(out.optimizer_state["iterations"]) - int(model.optimizer_state["iterations"])
    assert steps == cfg.warm_epochs * -(-train_rows // cfg.batch_size)
    assert training["examples_per_second"] > 0
    # the blessed model's scalers are kept: the towers' first layers read the inputs they learned on
    assert out.user_scaler == model.user_scaler and out.item_scaler == model.item_scaler
    again = fit_softmax_towers(users, items, inter, cfg, warm)
    np.testing.assert_array_equal(item_vectors(out, items), item_vectors(again, items))
    # and it still separates the two groups of items it learned
    vectors = item_vectors(out, items)
    group = (items[C.ITEM_ID].to_numpy() >= 110).astype(int)
    same = vectors[group == 0] @ vectors[group == 0].T
    across = vectors[group == 0] @ vectors[group == 1].T
    assert same.mean() > across.mean() + 0.1


def test_without_a_saved_optimizer_the_warm_start_begins_adam_afresh(blessed, data):
    _, model = blessed
    users, items, inter = data
    assert model.optimizer_state is not None  # saved and loaded with the model
    bare = dataclasses.replace(model, optimizer_state=None)  # as a model of the earlier layout
    out = fit_softmax_towers(users, items, inter, CFG, WarmStart(bare, "m0", 1030, BLESSED_DS))
    assert out.meta["training"]["optimizer_resumed"] is False


def test_each_night_replays_its_own_draw_and_a_rerun_the_same(blessed):
    _, model = blessed
    rows, times = np.arange(2000), np.zeros(2000, np.int64)
    night = lambda since: replay_rows(rows, times, WarmStart(model, "m", since, DS), CFG)[0]  # noqa: E731
    assert np.array_equal(night(5), night(5))
    assert not np.array_equal(night(5), night(6))
    assert 150 < len(night(5)) < 250  # replay_share 0.1 of 2000


def test_a_replay_that_draws_nothing_and_no_new_row_is_a_named_error(blessed):
    _, model = blessed
    warm = WarmStart(model, "m1", 10**9, BLESSED_DS)
    rows = np.arange(3)
    with pytest.raises(RecsysError, match="no interaction is newer than its data"):
        replay_rows(rows, np.full(3, 5), warm, dataclasses.replace(CFG, replay_share=1e-9))
    kept, new = replay_rows(rows, np.array([5, 10**9 + 1, 7]), warm, CFG)
    assert new == 1 and 1 in kept
