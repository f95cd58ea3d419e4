"""EASE and item-kNN on hand-sized matrices: the closed form, the cosine neighborhoods, and a setting
chosen on the validation split inside the training rows."""

import numpy as np
import pandas as pd
import pytest

from recsys_core import columns as C
from recsys_core.evaluation import item_baselines as ib


def rows(pairs):
    """Training interactions (user, item), one day apart per user in the order given."""
    return pd.DataFrame(
        [(u, i, 4.0, n) for n, (u, i) in enumerate(pairs)],
        columns=[C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP],
    )


def test_the_interaction_matrix_is_binary_and_keeps_the_most_interacted_items():
    train = rows([(1, 10), (1, 10), (1, 20), (2, 20), (3, 20), (3, 30)])
    users, scored, x = ib.interaction_matrix(train, np.array([10, 20, 30, 40]), max_items=2)
    assert users.tolist() == [1, 2, 3]
    assert scored.tolist() == [0, 1]  # 20 (3 users), then 10 and 30 (1 each): the lower id
    assert x.toarray().tolist() == [[1, 1], [0, 1], [0, 1]]  # user 1's repeated 10 counts once


def test_ease_is_the_closed_form_with_a_zero_diagonal():
    gram = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 1.0]])
    b = ib.ease_weights(gram, reg=1.0)
    p = np.linalg.inv(gram + np.eye(3))
    expected = np.eye(3) - p / np.diag(p)  # B = I - P diagMat(1 / diag(P))
    np.testing.assert_allclose(b, expected, atol=1e-12)
    assert np.all(np.diag(b) == 0)
    # each column solves the ridge regression of that item on the others (Steck 2019, eq. 8)
    j = 1
    others = [0, 2]
    np.testing.assert_allclose(
        b[others, j],
        np.linalg.solve(gram[np.ix_(others, others)] + np.eye(2), gram[others, j]),
        atol=1e-12,
    )


def test_knn_keeps_each_items_most_similar_neighbors_by_cosine():
    gram = np.array([[4.0, 2.0, 1.0], [2.0, 4.0, 0.0], [1.0, 0.0, 1.0]])
    sim = ib.knn_weights(gram, neighbors=1)
    # cosines: (0,1) = 2/4 = 0.5, (0,2) = 1/2 = 0.5, (1,2) = 0; ties keep either one of them
    assert np.count_nonzero(sim, axis=1).tolist() == [1, 1, 1]
    assert sim[1, 0] == pytest.approx(0.5) and sim[2, 0] == pytest.approx(0.5)
    full = ib.knn_weights(gram, neighbors=5)
    np.testing.assert_allclose(full, [[0, 0.5, 0.5], [0.5, 0, 0], [0.5, 0, 0]])


def test_item_to_item_scores_a_user_by_their_history_and_never_recommends_it():
    items = np.array([10, 20, 30])
    model = ib.ItemToItem(
        user_ids=np.array([1]),
        item_ids=items,
        scored=np.array([0, 1, 2]),
        history=ib.sparse.csr_matrix(np.array([[1.0, 0.0, 0.0]])),
        weights=np.array([[0.0, 0.2, 0.7], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
    )
    recs = model.recommend(np.array([1, 2]), rows([(1, 10)]), k=3)
    got = recs.groupby(C.USER_ID)[C.ITEM_ID].apply(list).to_dict()
    assert got[1] == [30, 20]  # 0.7, then 0.2; item 10 was seen
    assert got[2] == [10, 20, 30]  # unknown user: all unscored alike, by id


def test_the_setting_is_chosen_on_the_validation_split_inside_the_training_rows():
    # every user watches 1 then 2 then 3 (or 4 then 5 then 6): the last item is their validation row,
    # so the model that links an item to the next one wins, whatever the test set holds
    pairs = [(u, b + k) for u in range(1, 13) for b in ((1,) if u % 2 else (4,)) for k in range(3)]
    train = rows(pairs)
    items = np.arange(1, 7)
    model = ib.ease(train, items, regs=(0.1, 1000.0))
    assert model.chosen["reg"] == 0.1
    assert set(model.chosen["validation_ndcg@10"]) == {"0.1", "1000.0"}
    assert model.chosen["validation_ndcg@10"]["0.1"] >= model.chosen["validation_ndcg@10"]["1000.0"]
    recs = model.recommend(np.array([1]), rows([(1, 1)]), k=1)
    assert recs[C.ITEM_ID].tolist() in ([2], [3])  # from the user's own group, never 4..6
    knn = ib.item_knn(train, items, grid=(1, 2))
    assert knn.chosen["neighbors"] in (1, 2) and set(knn.chosen["validation_ndcg@10"]) == {"1", "2"}
    top = knn.recommend(np.array([2]), rows([(2, 4)]), k=1)[C.ITEM_ID].tolist()
    assert top in ([5], [6])  # a neighbor of 4: watched with it by every user who watched it
