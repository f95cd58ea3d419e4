"""Training examples (labels, sampled negatives) and what a content-based model gives never-seen users and items."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

from recsys_core import columns as C
from recsys_core.config import ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.model.training import fit_towers
from recsys_core.model.training_examples import sample_negatives, training_examples

USERS = pd.DataFrame({C.USER_ID: [1, 2, 3], "f": [0.1, 0.2, 0.3]})
ITEMS = pd.DataFrame({C.ITEM_ID: [10, 20, 30, 40], "g": [1.0, 2.0, 3.0, 4.0]})
INTER = pd.DataFrame(
    {
        C.USER_ID: [1, 1, 2, 3, 9],
        C.ITEM_ID: [10, 20, 30, 40, 10],
        C.RATING: [5.0, 2.0, 4.0, 3.5, 5.0],
    }
)


def test_regression_targets_are_the_ratings_of_known_pairs():
    xu, xi, y = training_examples(INTER, USERS, ITEMS, ModelConfig(mode="regression"))
    assert y.tolist() == [5.0, 2.0, 4.0, 3.5]  # user 9 has no features: skipped
    assert xu["f"].tolist() == [0.1, 0.1, 0.2, 0.3] and xi["g"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert C.USER_ID not in xu.columns and C.ITEM_ID not in xi.columns


def test_liked_label_thresholds_the_rating_and_interacted_counts_every_interaction():
    liked = ModelConfig(mode="classification", label="liked", negatives=0, like_threshold=4.0)
    assert training_examples(INTER, USERS, ITEMS, liked)[2].tolist() == [True, False, True, False]
    implicit = ModelConfig(mode="classification", label="interacted", negatives=0)
    assert training_examples(INTER, USERS, ITEMS, implicit)[2].tolist() == [True] * 4


def test_negatives_are_never_pairs_the_user_interacted_with():
    u = np.repeat(np.arange(50), 5)
    i = np.random.default_rng(0).integers(0, 20, len(u))
    nu, ni = sample_negatives(u, i, 20, 3, seed=1)
    assert 0.5 * 3 * len(u) < len(nu) <= 3 * len(u)
    assert not set(zip(nu.tolist(), ni.tolist(), strict=True)) & set(
        zip(u.tolist(), i.tolist(), strict=True)
    )
    again = sample_negatives(u, i, 20, 3, seed=1)
    assert np.array_equal(again[1], ni)  # seeded


def test_sampled_negatives_are_labelled_zero():
    cfg = ModelConfig(mode="classification", label="interacted", negatives=2)
    xu, xi, y = training_examples(INTER, USERS, ITEMS, cfg)
    assert y[:4].all() and not y[4:].any() and len(y) > 4
    assert len(xu) == len(xi) == len(y)


def test_no_known_pair_raises():
    with pytest.raises(RecsysError, match="nothing to train on"):
        training_examples(INTER[INTER[C.USER_ID] == 9], USERS, ITEMS, ModelConfig())


def test_users_and_items_that_never_interacted_get_embeddings_from_their_features():
    """Content-based: an item nobody interacted with, and a user with no history, are placed by their
    features. Users like items of their own genre; item 999 (genre a) and user 999 (likes a) are unseen."""
    rng = np.random.default_rng(0)
    n_users, n_items = 120, 60
    user_genre = rng.integers(0, 2, n_users)
    item_genre = rng.integers(0, 2, n_items)
    users = pd.DataFrame(
        {
            C.USER_ID: np.arange(n_users),
            "likes_a": (user_genre == 0).astype(float),
            "likes_b": (user_genre == 1).astype(float),
        }
    )
    items = pd.DataFrame(
        {
            C.ITEM_ID: np.arange(n_items),
            "is_a": (item_genre == 0).astype(float),
            "is_b": (item_genre == 1).astype(float),
        }
    )
    rows = [
        (u, i)
        for u in range(n_users)
        for i in rng.choice(np.flatnonzero(item_genre == user_genre[u]), 8)
    ]
    inter = (
        pd.DataFrame(rows, columns=[C.USER_ID, C.ITEM_ID])
        .drop_duplicates()
        .assign(**{C.RATING: 4.0})
    )
    cfg = ModelConfig(
        mode="classification",
        label="interacted",
        negatives=2,
        user_layers=(16, 8),
        item_layers=(16, 8),
        epochs=8,
        batch_size=64,
        learning_rate=0.01,
        seed=3,
    )
    model = fit_towers(*training_examples(inter, users, items, cfg), cfg)

    new_item = pd.DataFrame({"is_a": [1.0], "is_b": [0.0]})
    new_user = pd.DataFrame({"likes_a": [1.0], "likes_b": [0.0]})
    vi, vu = model.embed_items(new_item), model.embed_users(new_user)
    assert np.allclose(np.linalg.norm(vi, axis=1), 1, atol=1e-5) and np.allclose(
        np.linalg.norm(vu, axis=1), 1, atol=1e-5
    )
    fans_a = users[users["likes_a"] == 1].drop(columns=C.USER_ID).head(20)
    fans_b = users[users["likes_b"] == 1].drop(columns=C.USER_ID).head(20)
    p_a = model.predict(fans_a, pd.concat([new_item] * len(fans_a), ignore_index=True))
    p_b = model.predict(fans_b, pd.concat([new_item] * len(fans_b), ignore_index=True))
    assert p_a.mean() > p_b.mean() + 0.3  # the unseen genre-a item goes to genre-a fans
    catalogue = items.drop(columns=C.ITEM_ID)
    p_new_user = model.predict(pd.concat([new_user] * n_items, ignore_index=True), catalogue)
    assert p_new_user[item_genre == 0].mean() > p_new_user[item_genre == 1].mean() + 0.3


@pytest.mark.parametrize("seed", [0, 1])
def test_without_pairs_is_the_left_anti_join_on_user_and_item(seed):
    """Every interaction of a held (user, item) pair goes, repeats of the pair included; a held user's
    other items and a held item's other users stay; the order is kept."""
    from recsys_core.model.training_examples import without_pairs

    rng = np.random.default_rng(seed)
    n = 400
    interactions = pd.DataFrame(
        {
            C.USER_ID: rng.integers(1, 30, n) * 1_000_003,  # ids far apart: keys are by place
            C.ITEM_ID: rng.integers(1, 25, n),
            C.RATING: rng.integers(1, 6, n).astype(np.float32),
            C.TIMESTAMP: rng.integers(0, 10**9, n),
        }
    )
    held = interactions.sample(40, random_state=seed)[[C.USER_ID, C.ITEM_ID]]
    held = pd.concat([held, held.head(3), pd.DataFrame({C.USER_ID: [7], C.ITEM_ID: [999]})])
    marked = interactions.merge(held.drop_duplicates(), how="left", indicator=True)
    expected = marked.loc[marked["_merge"] == "left_only", list(interactions.columns)]
    out = without_pairs(interactions, held)
    pd.testing.assert_frame_equal(out, expected.reset_index(drop=True))
    assert len(out) < n - 40  # repeats of held pairs went too
    assert without_pairs(interactions, held.iloc[:0]) is interactions  # nothing held: no copy
