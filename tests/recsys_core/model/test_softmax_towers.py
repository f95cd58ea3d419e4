"""The softmax towers: their layers (id embeddings, recency pooling), what fit_softmax_towers learns from
users' histories and items' content, determinism, save/load, and the inputs a softmax model needs."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys_core import columns as C
from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.io.layout import MODEL_VOCABULARY_FILE
from recsys_core.model.history import PAD
from recsys_core.model.softmax_training import fit_softmax_towers, histories_of
from recsys_core.model.two_tower import TwoTowerModel

SMALL = ModelConfig(
    user_layers=(16, 8),
    item_layers=(16, 8),
    learning_rate=0.01,
    epochs=15,
    batch_size=32,
    sampled_negatives=8,
    history_length=5,
    validation_share=0.0,
    seed=3,
)
PER_GROUP = 10  # items per group
UNSEEN = (900, 901)  # catalogue items of group A and B that no interaction mentions


def synthetic(content: float, unseen: bool = False, seed: int = 0):
    """Two groups of items (A: ids 100..109, B: 110..119) and 60 users, odd ids in group A, even in B;
    each user likes 8 items of their group, one after the other in time. The user features are noise;
    the item feature i_x is noise plus `content` * (+1 for group B, -1 for group A), i_y is noise. With
    `unseen`, the catalogue also holds UNSEEN (one item per group) that no interaction mentions, their
    content at their group's centre (i_x = -+`content`, i_y = 0).
    Returns users, items, interactions and each catalogue item's group (0 = A, 1 = B)."""
    rng = np.random.default_rng(seed)
    item_ids = np.arange(100, 100 + 2 * PER_GROUP)
    group = np.repeat([0, 1], PER_GROUP)
    if unseen:
        item_ids, group = np.r_[item_ids, UNSEEN], np.r_[group, 0, 1]
    items = pd.DataFrame(
        {
            C.ITEM_ID: item_ids,
            "i_x": rng.normal(size=len(item_ids)) + content * (2 * group - 1),
            "i_y": rng.normal(size=len(item_ids)),
        }
    )
    if unseen:  # typical items of their group: no noise to pull one across
        items.loc[items[C.ITEM_ID].isin(UNSEEN), ["i_x", "i_y"]] = [[-content, 0.0], [content, 0.0]]
    user_ids = np.arange(1, 61)
    users = pd.DataFrame(
        {C.USER_ID: user_ids, "u_x": rng.normal(size=60), "u_y": rng.normal(size=60)}
    )
    rows = []
    for user in user_ids:
        pool = np.arange(100, 100 + 2 * PER_GROUP)[np.repeat([0, 1], PER_GROUP) == 1 - user % 2]
        for t, item in enumerate(rng.choice(pool, 8, replace=False)):
            rows.append((user, item, 5.0, 1000 + 10 * t))
    interactions = pd.DataFrame(rows, columns=[C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP])
    return users, items, interactions, group


def user_group(user_ids) -> np.ndarray:
    """0 (group A) for odd user ids, 1 (group B) for even ones, as in `synthetic`."""
    return 1 - np.asarray(user_ids) % 2


def item_vectors(model: TwoTowerModel, items: pd.DataFrame) -> np.ndarray:
    return model.embed_items(items.drop(columns=C.ITEM_ID), items[C.ITEM_ID].to_numpy())


@pytest.fixture(scope="module")
def by_history():
    """Content carries no signal: only ids and histories tell the groups apart."""
    users, items, interactions, group = synthetic(content=0.0)
    return users, items, interactions, group, fit_softmax_towers(users, items, interactions, SMALL)


@pytest.fixture(scope="module")
def by_content():
    """A strong content signal (group shifts i_x by +-3 standard deviations) and two unseen items."""
    users, items, interactions, group = synthetic(content=3.0, unseen=True, seed=1)
    cfg = dataclasses.replace(SMALL, validation_share=0.1)
    return users, items, interactions, group, fit_softmax_towers(users, items, interactions, cfg)


# --- layers ---


def test_recency_pool_weighs_items_by_half_life_and_skips_empty_slots():
    """half_life=1 and history [empty, a, b]: b (newest) weighs 1, a weighs 1/2, the empty slot nothing,
    even when its input vector is not zero; half_life=2 gives a the weight 2**-0.5."""
    from recsys_core.model.layers import RecencyPool

    e_a, e_b = np.array([1.0, 2.0, -1.0]), np.array([-3.0, 0.5, 4.0])
    garbage = np.array([100.0, -100.0, 7.0])  # the vector at the empty slot: must not count
    vectors = np.stack([garbage, e_a, e_b])[None].astype(np.float32)
    index = np.array([[0, 5, 2]], dtype=np.int32)
    pooled = np.asarray(RecencyPool(half_life=1.0)(vectors, index))
    np.testing.assert_allclose(pooled, [(0.5 * e_a + 1.0 * e_b) / 1.5], rtol=1e-6)
    w = 2**-0.5
    pooled2 = np.asarray(RecencyPool(half_life=2.0)(vectors, index))
    np.testing.assert_allclose(pooled2, [(w * e_a + e_b) / (w + 1)], rtol=1e-6)


def test_recency_pool_of_an_all_empty_history_is_zero():
    """Rows whose slots are all empty (index 0) pool to zeros, next to a row that is not empty."""
    from recsys_core.model.layers import RecencyPool

    vectors = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    index = np.array([[0, 0, 0, 0], [0, 0, 0, 9]], dtype=np.int32)
    pooled = np.asarray(RecencyPool(half_life=1.0)(vectors, index))
    assert np.isfinite(pooled).all()
    np.testing.assert_array_equal(pooled[0], np.zeros(3))
    np.testing.assert_allclose(pooled[1], vectors[1, 3], rtol=1e-6)


def test_id_embedding_gives_zeros_for_index_zero_and_the_stored_vector_otherwise():
    """In inference, index 0 ("no id") embeds as zeros and other indices as their stored rows, whatever
    the dropout setting."""
    from recsys_core.model.layers import IdEmbedding

    layer = IdEmbedding(size=6, dim=4, dropout=0.5, seed=1)
    index = np.array([[0, 3], [5, 0]], dtype=np.int32)
    out = np.asarray(layer(index))
    stored = layer.embeddings.numpy()
    assert out.shape == (2, 2, 4)
    np.testing.assert_array_equal(out[0, 0], np.zeros(4))
    np.testing.assert_array_equal(out[1, 1], np.zeros(4))
    np.testing.assert_array_equal(out[0, 1], stored[3])
    np.testing.assert_array_equal(out[1, 0], stored[5])
    assert np.abs(stored[1:]).sum() > 0  # the stored vectors are not zero themselves


def test_id_embedding_dropout_zeroes_a_seeded_share_of_rows_without_rescaling():
    """In training, dropout=0.5 zeroes about half of the rows (seeded: the same seed, the same rows);
    the rows kept equal the stored embedding exactly, not scaled by 1 / (1 - dropout). With drop=False
    only index 0 is zeroed."""
    from recsys_core.model.layers import IdEmbedding

    index = np.random.default_rng(0).integers(1, 8, size=4000).astype(np.int32)
    layer = IdEmbedding(size=8, dim=3, dropout=0.5, seed=11)
    out = np.asarray(layer(index, training=True))
    stored = layer.embeddings.numpy()
    zeroed = np.all(out == 0, axis=1)
    assert 0.45 < zeroed.mean() < 0.55
    np.testing.assert_array_equal(out[~zeroed], stored[index[~zeroed]])
    twin = IdEmbedding(size=8, dim=3, dropout=0.5, seed=11)
    twin_zeroed = np.all(np.asarray(twin(index, training=True)) == 0, axis=1)
    np.testing.assert_array_equal(twin_zeroed, zeroed)
    kept = np.asarray(layer(index, training=True, drop=False))
    np.testing.assert_array_equal(kept, stored[index])


# --- training ---


def test_fit_learns_from_history_when_content_says_nothing(by_history):
    """Content features are noise; a user never seen in training (id index 0) is placed by their
    history alone: with five group-A items as history, each of the other five group-A items (never
    in that history) scores above every group-B item, and the reverse for a group-B history."""
    users, items, _, group, model = by_history
    vm = item_vectors(model, items)
    item_ids = items[C.ITEM_ID].to_numpy()
    a, b = item_ids[group == 0], item_ids[group == 1]
    histories = np.array([a[:5], b[:5]])
    fresh = pd.DataFrame({"u_x": [0.0, 0.0], "u_y": [0.0, 0.0]})
    vu = model.embed_users(fresh, np.array([555, 556]), histories)
    scores = vu @ vm.T
    held_out_a = (group == 0) & ~np.isin(item_ids, a[:5])
    held_out_b = (group == 1) & ~np.isin(item_ids, b[:5])
    assert scores[0, held_out_a].min() > scores[0, group == 1].max()
    assert scores[1, held_out_b].min() > scores[1, group == 0].max()


def test_fit_ranks_known_users_own_group_first(by_history):
    """Known users with their own recent items (histories_of): the mean score of their group's items
    beats the other group's for at least 90% of the users, and by a wide margin on average. (Not every
    user: on 480 interactions a user's noise features and id embedding can pull one user's vector
    to neutral, as one of 60 did with another seed.)"""
    users, items, interactions, group, model = by_history
    ids = users[C.USER_ID].to_numpy()
    histories = histories_of(model, interactions, ids)
    assert histories.shape == (60, SMALL.history_length) and (histories != PAD).all()
    scores = (
        model.embed_users(users.drop(columns=C.USER_ID), ids, histories)
        @ item_vectors(model, items).T
    )
    own = np.where(user_group(ids)[:, None] == group[None, :], scores, np.nan)
    other = np.where(user_group(ids)[:, None] != group[None, :], scores, np.nan)
    margin = np.nanmean(own, axis=1) - np.nanmean(other, axis=1)
    assert (margin > 0).mean() >= 0.9
    assert margin.mean() > 0.2


def test_an_item_never_seen_in_training_is_placed_by_its_content(by_content):
    """UNSEEN holds one item per group that no interaction mentions (id index 0): its v_m is finite and
    of unit length, and every group-A user scores the unseen group-A item above the unseen group-B
    item (and the reverse for group-B users). The content signal is strong (+-3 standard deviations on
    i_x, the unseen items at their group's centre) so that 20 training items suffice for the item
    tower to learn it: an unseen item's id embedding is zero, so its content alone places it."""
    users, items, interactions, group, model = by_content
    assert not interactions[C.ITEM_ID].isin(UNSEEN).any()
    assert not np.isin(UNSEEN, model.vocabulary.item_ids).any()
    vm = item_vectors(model, items)
    unseen = vm[np.isin(items[C.ITEM_ID].to_numpy(), UNSEEN)]  # rows: group A, group B
    assert np.isfinite(unseen).all()
    np.testing.assert_allclose(np.linalg.norm(unseen, axis=1), 1.0, atol=1e-5)
    ids = users[C.USER_ID].to_numpy()
    vu = model.embed_users(
        users.drop(columns=C.USER_ID), ids, histories_of(model, interactions, ids)
    )
    scores = vu @ unseen.T
    in_a = user_group(ids) == 0
    assert (scores[in_a, 0] > scores[in_a, 1]).all()
    assert (scores[~in_a, 1] > scores[~in_a, 0]).all()


def test_the_same_inputs_and_seed_train_identical_towers(by_history):
    """A second fit on the same inputs with the same seed gives bit-identical user and item vectors
    and the same losses; another seed gives other vectors (the check can fail)."""
    users, items, interactions, _, model = by_history
    again = fit_softmax_towers(users, items, interactions, SMALL)
    ids = users[C.USER_ID].to_numpy()
    histories = histories_of(model, interactions, ids)
    x = users.drop(columns=C.USER_ID)
    np.testing.assert_array_equal(
        again.embed_users(x, ids, histories), model.embed_users(x, ids, histories)
    )
    np.testing.assert_array_equal(item_vectors(again, items), item_vectors(model, items))
    assert again.meta["metrics"]["loss"] == model.meta["metrics"]["loss"]
    other = fit_softmax_towers(
        users, items, interactions, dataclasses.replace(SMALL, seed=SMALL.seed + 1, epochs=1)
    )
    assert not np.allclose(item_vectors(other, items), item_vectors(model, items))


def test_save_and_load_keep_the_embeddings_and_the_vocabulary(tmp_path, by_history):
    """The loaded model embeds users and items exactly as the saved one, reads the vocabulary file back
    (ids and history length) and keeps mode, metrics and temperature."""
    users, items, interactions, _, model = by_history
    path = model.save(tmp_path / "model")
    assert (path / MODEL_VOCABULARY_FILE).exists()
    loaded = TwoTowerModel.load(path)
    assert loaded.vocabulary is not None
    np.testing.assert_array_equal(loaded.vocabulary.user_ids, model.vocabulary.user_ids)
    np.testing.assert_array_equal(loaded.vocabulary.item_ids, model.vocabulary.item_ids)
    assert loaded.vocabulary.history_length == SMALL.history_length
    assert loaded.mode == "softmax"
    ids = np.r_[users[C.USER_ID].to_numpy(), 999]  # and a user the vocabulary does not know
    x = pd.concat([users, users.iloc[[0]]]).drop(columns=C.USER_ID)
    histories = histories_of(model, interactions, ids)
    np.testing.assert_array_equal(
        loaded.embed_users(x, ids, histories), model.embed_users(x, ids, histories)
    )
    np.testing.assert_array_equal(item_vectors(loaded, items), item_vectors(model, items))
    assert loaded.meta["metrics"] == model.meta["metrics"]
    assert loaded.meta["temperature"] == model.meta["temperature"]
    # the file alone: raw features with the vocabulary's indices in, the affinity (1 + v_u.v_m) / 2 out
    import keras

    alone = keras.models.load_model(path / "model.keras")
    item_x = items.drop(columns=C.ITEM_ID).to_numpy(np.float32)
    pairs = [
        x.to_numpy(np.float32),
        model.vocabulary.user_index(ids),
        model.vocabulary.item_index(histories),
        np.repeat(item_x[:1], len(ids), axis=0),
        np.repeat(model.vocabulary.item_index(items[C.ITEM_ID].to_numpy()[:1]), len(ids)),
    ]
    vu = model.embed_users(x, ids, histories)
    vm = item_vectors(model, items)[:1]
    np.testing.assert_allclose(
        alone.predict(pairs, verbose=0).ravel(), (1 + vu @ vm[0]) / 2, rtol=1e-4, atol=1e-4
    )


def test_embed_users_of_a_softmax_model_needs_ids_and_histories_of_the_right_width(by_history):
    """Without user ids, or without histories, embed_users raises a RecsysError naming what is missing;
    histories of the wrong width or a wrong number of ids raise too; the right inputs are accepted."""
    users, items, interactions, _, model = by_history
    x = users.drop(columns=C.USER_ID)
    ids = users[C.USER_ID].to_numpy()
    histories = histories_of(model, interactions, ids)
    with pytest.raises(RecsysError, match="user ids"):
        model.embed_users(x)
    with pytest.raises(RecsysError, match="history ids"):
        model.embed_users(x, ids)
    with pytest.raises(RecsysError, match=r"histories must be 60 rows of 5 item ids"):
        model.embed_users(x, ids, histories[:, :4])
    with pytest.raises(RecsysError, match=r"histories must be"):
        model.embed_users(x, ids, histories[:, 0])  # one dimension only
    with pytest.raises(RecsysError, match="59 user ids for 60 feature rows"):
        model.embed_users(x, ids[:-1], histories)
    with pytest.raises(RecsysError, match="item ids"):
        model.embed_items(items.drop(columns=C.ITEM_ID))
    assert model.embed_users(x, ids, histories).shape == (60, 8)


def test_metrics_hold_a_loss_per_epoch_and_a_learned_temperature(by_history, by_content):
    """One training loss and one temperature per epoch; the loss falls; the temperature has moved
    away from initial_temperature; val_loss is there (one per epoch) only with a validation share."""
    _, _, interactions, _, model = by_history
    metrics = model.meta["metrics"]
    assert len(metrics["loss"]) == SMALL.epochs
    assert len(metrics["temperature"]) == SMALL.epochs
    assert metrics["loss"][-1] < metrics["loss"][0]
    assert all(t > 0 and np.isfinite(t) for t in metrics["temperature"])
    assert abs(metrics["temperature"][-1] - SMALL.initial_temperature) > 1e-3
    assert model.meta["temperature"] == metrics["temperature"][-1]
    assert metrics["train_rows"] == len(interactions) and metrics["validation_rows"] == 0
    assert "val_loss" not in metrics
    _, _, interactions, _, validated = by_content
    vmetrics = validated.meta["metrics"]
    assert len(vmetrics["val_loss"]) == SMALL.epochs
    assert 0 < vmetrics["validation_rows"] < vmetrics["train_rows"]
    assert vmetrics["train_rows"] + vmetrics["validation_rows"] == len(interactions)


def test_weight_averaging_keeps_the_moving_average_not_the_last_steps_weights():
    """With weight averaging the kept towers are not the last step's: the same steps are taken (equal
    losses per epoch) but every kept weight differs from the one kept without averaging."""
    users, items, interactions, _ = synthetic(content=0.0)
    last = fit_softmax_towers(
        users, items, interactions, dataclasses.replace(SMALL, weight_averaging=0.0)
    )
    averaged = fit_softmax_towers(
        users, items, interactions, dataclasses.replace(SMALL, weight_averaging=0.9)
    )
    differs = [
        not np.allclose(a, b)
        for a, b in zip(
            last.keras_model.get_weights(), averaged.keras_model.get_weights(), strict=True
        )
    ]
    assert all(differs)
    assert last.meta["metrics"]["loss"] == averaged.meta["metrics"]["loss"]  # the same steps


def test_a_larger_logq_weight_raises_the_often_liked_item_above_the_rest():
    """Every user likes item 100 and two random others, so 100 is a third of the positives. A logQ
    weight above 1 over-corrects its frequency in the sampled negatives, which the towers can only make
    up for by scoring it higher: its margin over the other items' mean grows with the weight."""
    rng = np.random.default_rng(5)
    users, items, _, _ = synthetic(content=0.0)
    rows = [
        (user, item, 5.0, 1000 + 10 * t)
        for user in users[C.USER_ID]
        for t, item in enumerate([100, *rng.choice(np.arange(101, 120), 2, replace=False)])
    ]
    interactions = pd.DataFrame(rows, columns=[C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP])
    recent = histories_of(
        fit_softmax_towers(users, items, interactions, SMALL), interactions, users[C.USER_ID]
    )

    def margin(weight: float) -> float:
        model = fit_softmax_towers(
            users, items, interactions, dataclasses.replace(SMALL, logq_weight=weight)
        )
        u = model.embed_users(users.drop(columns=C.USER_ID), users[C.USER_ID].to_numpy(), recent)
        scores = u @ item_vectors(model, items).T  # items sorted by id: column 0 is item 100
        return float(np.mean(scores[:, 0] - scores[:, 1:].mean(axis=1)))

    unbiased, over = margin(1.0), margin(2.5)
    assert over > unbiased + 0.05, (unbiased, over)


def test_training_notes_its_epoch_and_examples_as_the_steps_progress(monkeypatch):
    """What `recsys run` shows of a running train_towers: the epoch, the examples done and the loss."""
    from recsys_core import progress

    noted: list[str] = []
    monkeypatch.setattr(progress, "note", lambda detail, force=False: noted.append(detail))
    users, items, interactions, _ = synthetic(content=0.0)
    cfg = dataclasses.replace(SMALL, epochs=2)
    fit_softmax_towers(users, items, interactions, cfg)
    firsts = [n for n in noted if n.startswith("epoch 1/2: ")]
    assert firsts and noted[-1].startswith("epoch 2/2: ")
    done, total = noted[-1].split(": ")[1].split(" examples")[0].split("/")
    assert done == total  # the last batch reaches every example of the epoch
    assert "loss " in noted[-1]
