"""Tests of the two-tower model of SEED.md: towers, unit-norm dot product, scaling, fit, save/load."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import dataclasses

import numpy as np
import pandas as pd
import pytest

from recsys_core.config import ModelConfig, from_dict
from recsys_core.errors import ConfigError, RecsysError
from recsys_core.model.network import build_model
from recsys_core.model.training import fit_towers
from recsys_core.model.two_tower import Scaler, TwoTowerModel

SMALL = ModelConfig(
    mode="regression",
    user_layers=(16, 8, 4),
    item_layers=(6, 4),
    l2=1e-4,
    learning_rate=0.01,
    epochs=12,
    batch_size=32,
    validation_share=0.25,
    seed=7,
)


def dense_widths(tower) -> list[int]:
    return [layer.units for layer in tower.layers]


def test_towers_may_differ_in_input_size_depth_and_width():
    model = build_model(5, 3, SMALL)
    user, item = model.get_layer("user_tower"), model.get_layer("item_tower")
    assert dense_widths(user) == [16, 8, 4]
    assert dense_widths(item) == [6, 4]
    assert [layer.activation.__name__ for layer in user.layers] == ["relu", "relu", "linear"]
    assert [layer.activation.__name__ for layer in item.layers] == ["relu", "linear"]
    assert user.layers[0].kernel.shape == (5, 16)
    assert item.layers[0].kernel.shape == (3, 6)
    assert [tuple(i.shape) for i in model.inputs] == [(None, 5), (None, 3)]


def test_output_is_the_dot_product_of_unit_norm_vectors():
    import keras

    # seeded: a 6-unit ReLU layer can, for some inits, be dead for an input, and a zero vector has no unit norm
    keras.utils.set_random_seed(7)
    model = build_model(5, 3, SMALL)
    rng = np.random.default_rng(0)
    xu = rng.normal(size=(50, 5)).astype(np.float32) * 3
    xi = rng.normal(size=(50, 3)).astype(np.float32) * 3
    tt = TwoTowerModel(
        model,
        Scaler(np.zeros(5), np.ones(5)),
        Scaler(np.zeros(3), np.ones(3)),
        1.0,
        5.0,
        mode=SMALL.mode,
    )
    vu, vm = tt.embed_users(xu), tt.embed_items(xi)
    assert vu.shape == vm.shape == (50, 4)
    np.testing.assert_allclose(np.linalg.norm(vu, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vm, axis=1), 1.0, atol=1e-5)
    scores = model.predict([xu, xi], verbose=0).ravel()
    np.testing.assert_allclose(scores, np.sum(vu * vm, axis=1), atol=1e-5)
    assert np.all(np.abs(scores) <= 1 + 1e-5)
    assert scores.std() > 0.05  # not a constant output
    np.testing.assert_allclose(tt.predict(xu, xi), tt.to_rating(np.sum(vu * vm, axis=1)), atol=1e-4)


def test_towers_with_different_output_sizes_raise_naming_both_sizes():
    unvalidated = dataclasses.replace(SMALL, user_layers=(16, 8, 5), item_layers=(6, 3))
    with pytest.raises(ConfigError, match=r"user tower outputs 5 values but item tower outputs 3"):
        build_model(5, 3, unvalidated)
    with pytest.raises(ConfigError, match=r"user_layers ends in 5, item_layers ends in 3"):
        from_dict({"model": {"user_layers": [16, 8, 5], "item_layers": [6, 3]}})


def test_l2_regularisation_is_on_every_kernel_only_when_l2_is_positive():
    import keras

    model = build_model(5, 3, SMALL)
    for name in ("user_tower", "item_tower"):
        for layer in model.get_layer(name).layers:
            reg = layer.kernel_regularizer
            assert isinstance(reg, keras.regularizers.L2)
            assert reg.l2 == pytest.approx(1e-4)
    plain = build_model(5, 3, dataclasses.replace(SMALL, l2=0.0))
    for name in ("user_tower", "item_tower"):
        assert all(layer.kernel_regularizer is None for layer in plain.get_layer(name).layers)


def test_scale_target_maps_min_to_minus_one_and_max_to_plus_one_and_to_rating_inverts_it():
    tt = TwoTowerModel(
        None, Scaler(np.zeros(1), np.ones(1)), Scaler(np.zeros(1), np.ones(1)), 1.0, 5.0
    )
    np.testing.assert_allclose(tt.scale_target([1.0, 2.0, 3.0, 5.0]), [-1.0, -0.5, 0.0, 1.0])
    np.testing.assert_allclose(tt.to_rating([-1.0, 0.0, 0.5, 1.0]), [1.0, 3.0, 4.0, 5.0])
    ratings = np.array([1.0, 1.5, 2.25, 4.75, 5.0])
    np.testing.assert_allclose(tt.to_rating(tt.scale_target(ratings)), ratings, atol=1e-6)


def test_scaler_standardises_and_leaves_constant_columns_unscaled():
    x = np.array([[1.0, 7.0], [3.0, 7.0]])
    s = Scaler.fit(x)
    np.testing.assert_allclose(s.mean, [2.0, 7.0])
    np.testing.assert_allclose(s.std, [1.0, 1.0])  # the constant column keeps std 1
    np.testing.assert_allclose(s.transform(x), [[-1.0, 0.0], [1.0, 0.0]])
    back = Scaler.from_dict(s.to_dict())
    np.testing.assert_array_equal(back.mean, s.mean)
    np.testing.assert_array_equal(back.std, s.std)


def synthetic(n: int = 480, seed: int = 0):
    """Rating 5 when the user's one-hot category matches the item's, else 1 (plus noise columns)."""
    rng = np.random.default_rng(seed)
    uc, ic = rng.integers(0, 2, n), rng.integers(0, 2, n)
    users = pd.DataFrame(
        {"u_a": uc == 0, "u_b": uc == 1, "age": rng.normal(40, 10, n), "noise": rng.normal(size=n)}
    ).astype(float)
    items = pd.DataFrame({"i_a": ic == 0, "i_b": ic == 1, "year": rng.normal(1990, 15, n)}).astype(
        float
    )
    return users, items, np.where(uc == ic, 5.0, 1.0)


@pytest.fixture(scope="module")
def data():
    return synthetic()


@pytest.fixture(scope="module")
def fitted(data):
    users, items, ratings = data
    return fit_towers(users, items, ratings, SMALL)


def test_scalers_are_fitted_on_training_rows_only(data, fitted):
    users, items, ratings = data
    n = len(ratings)
    order = np.random.default_rng(SMALL.seed).permutation(n)
    train = order[int(n * SMALL.validation_share) :]
    assert fitted.meta["metrics"]["validation_rows"] == 120
    assert fitted.meta["metrics"]["train_rows"] == 360
    np.testing.assert_allclose(fitted.user_scaler.mean, users.to_numpy()[train].mean(axis=0))
    np.testing.assert_allclose(fitted.item_scaler.mean, items.to_numpy()[train].mean(axis=0))
    np.testing.assert_allclose(fitted.user_scaler.std, users.to_numpy()[train].std(axis=0))
    # the validation rows would move the mean: the check above can tell them apart
    assert not np.allclose(fitted.user_scaler.mean, users.to_numpy().mean(axis=0))
    assert (fitted.rating_min, fitted.rating_max) == (1.0, 5.0)


def test_fit_learns_a_simple_match_signal(data, fitted):
    metrics = fitted.meta["metrics"]
    assert metrics["val_rmse_global_mean"] > 1.5  # ratings are 1 or 5, about half each
    assert metrics["val_rmse"] < 0.35 * metrics["val_rmse_global_mean"]
    assert metrics["loss"][-1] < metrics["loss"][0]
    users, items, _ = data
    u = users.iloc[[0]]
    match = items[items.i_a == users.u_a.iloc[0]].iloc[[0]]
    other = items[items.i_a != users.u_a.iloc[0]].iloc[[0]]
    assert fitted.predict(u, match)[0] > fitted.predict(u, other)[0] + 2.0


def test_the_same_seed_gives_identical_predictions(data, fitted):
    users, items, ratings = data
    again = fit_towers(users, items, ratings, SMALL)
    np.testing.assert_array_equal(again.predict(users, items), fitted.predict(users, items))
    assert again.meta["metrics"]["loss"] == fitted.meta["metrics"]["loss"]


def test_save_and_load_round_trip(tmp_path, data, fitted):
    users, items, _ = data
    path = fitted.save(tmp_path / "model")
    fitted.save(path)  # saving over an existing version replaces it
    loaded = TwoTowerModel.load(path)
    np.testing.assert_array_equal(loaded.predict(users, items), fitted.predict(users, items))
    assert loaded.user_columns == ["u_a", "u_b", "age", "noise"]
    assert loaded.item_columns == ["i_a", "i_b", "year"]
    assert (loaded.rating_min, loaded.rating_max) == (1.0, 5.0)
    np.testing.assert_array_equal(loaded.user_scaler.mean, fitted.user_scaler.mean)
    assert loaded.meta["metrics"]["val_rmse"] == fitted.meta["metrics"]["val_rmse"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp directories left


def test_the_saved_model_keras_alone_scores_raw_features(tmp_path, data, fitted):
    """keras.models.load_model("model.keras") takes the raw, unscaled features and gives the
    prediction on the rating scale: the scaling and the output are inside the file."""
    import keras

    users, items, _ = data
    path = fitted.save(tmp_path / "model")
    alone = keras.models.load_model(path / "model.keras")
    raw = [users.to_numpy(np.float32), items.to_numpy(np.float32)]
    np.testing.assert_allclose(
        alone.predict(raw, verbose=0).ravel(), fitted.predict(users, items), rtol=1e-4, atol=1e-4
    )
    names = {layer.name for layer in alone.layers}
    assert {"scale_x_u", "scale_x_m", "prediction"} <= names


def test_a_model_saved_in_the_layout_before_loads_the_same(tmp_path, data, fitted):
    """Before, model.keras was the bare network and meta.json alone held the scaling: such a folder
    still loads and predicts the same; a model.keras that is neither fails, saying what it is not."""
    import keras

    users, items, _ = data
    path = fitted.save(tmp_path / "model")
    fitted.keras_model.save(path / "model.keras")  # the layout before
    old = TwoTowerModel.load(path)
    np.testing.assert_allclose(old.predict(users, items), fitted.predict(users, items), rtol=1e-6)
    other = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    other.save(path / "model.keras")
    with pytest.raises(RecsysError, match="not written by TwoTowerModel.save"):
        TwoTowerModel.load(path)


def test_load_of_a_missing_model_raises(tmp_path):
    with pytest.raises(RecsysError, match="no model at"):
        TwoTowerModel.load(tmp_path / "none")


@pytest.mark.parametrize(
    ("user_nan", "item_nan", "target_nan", "name"),
    [(True, False, False, "user"), (False, True, False, "item"), (False, False, True, "target")],
)
def test_fit_rejects_nan_inputs(user_nan, item_nan, target_nan, name):
    users, items, ratings = synthetic(20)
    if user_nan:
        users.iloc[3, 2] = np.nan
    if item_nan:
        items.iloc[4, 0] = np.inf
    if target_nan:
        ratings[5] = np.nan
    with pytest.raises(RecsysError, match=f"{name} training data contains NaN"):
        fit_towers(users, items, ratings, SMALL)


def test_fit_rejects_misaligned_or_empty_rows():
    users, items, ratings = synthetic(20)
    with pytest.raises(RecsysError, match="aligned, non-empty rows; got 20, 19, 20"):
        fit_towers(users, items.iloc[:19], ratings, SMALL)
    with pytest.raises(RecsysError, match="got 20, 20, 21"):
        fit_towers(users, items, np.r_[ratings, 3.0], SMALL)
    with pytest.raises(RecsysError, match="got 0, 0, 0"):
        fit_towers(users.iloc[:0], items.iloc[:0], ratings[:0], SMALL)


def test_embed_with_wrong_feature_columns_raises(data, fitted):
    users, items, _ = data
    with pytest.raises(RecsysError, match="user feature columns differ"):
        fitted.embed_users(users.rename(columns={"age": "years"}))
    # the same names in another order line up by name
    np.testing.assert_allclose(
        fitted.embed_users(users[["u_b", "u_a", "age", "noise"]]), fitted.embed_users(users)
    )
    with pytest.raises(RecsysError, match="item feature columns differ"):
        fitted.embed_items(items.drop(columns="year"))
    with pytest.raises(RecsysError, match="item features contain NaN"):
        fitted.embed_items(items.assign(year=np.nan))
    with pytest.raises(RecsysError, match="user features have 3 columns"):
        fitted.embed_users(users.to_numpy()[:, :3])  # a bare array of the wrong width
    with pytest.raises(RecsysError, match="item features have 1 columns"):
        fitted.embed_items(np.ones((5, 1)))  # would broadcast silently against the scaler
    assert fitted.embed_users(users.to_numpy()[:5]).shape == (5, 4)  # the right width is accepted


def test_classification_mode_learns_likes_and_outputs_probabilities(data, tmp_path):
    from dataclasses import replace

    users, items, ratings = data
    model = fit_towers(
        users, items, ratings, replace(SMALL, mode="classification", like_threshold=4.0)
    )
    assert model.keras_model.get_layer("probability").activation.__name__ == "sigmoid"
    assert model.keras_model.loss == "binary_crossentropy"
    metrics = model.meta["metrics"]
    assert metrics["val_accuracy"] > 0.9
    assert metrics["val_log_loss"] < 0.5 * metrics["val_log_loss_base_rate"]
    probs = model.predict(users, items)
    assert ((probs > 0) & (probs < 1)).all()
    scores = np.sum(model.embed_users(users) * model.embed_items(items), axis=1)
    w, b = model.calibration
    assert w > 0  # a learned temperature that cannot flip the ranking by v_u . v_m
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-(w * scores + b))), rtol=1e-5)
    assert (
        probs.max() > 0.9 and probs.min() < 0.1
    )  # not squeezed into sigmoid([-1, 1]) = 0.27..0.73
    liked = ratings >= 4.0
    assert probs[liked].mean() > probs[~liked].mean() + 0.2
    again = TwoTowerModel.load(model.save(tmp_path / "m"))
    assert again.mode == "classification" and np.allclose(
        again.predict(users, items), probs, atol=1e-6
    )
    # the file alone: raw features in, the calibrated probability out
    import keras

    alone = keras.models.load_model(tmp_path / "m" / "model.keras")
    raw = [users.to_numpy(np.float32), items.to_numpy(np.float32)]
    np.testing.assert_allclose(alone.predict(raw, verbose=0).ravel(), probs, atol=1e-4)


def test_unknown_model_mode_is_rejected():
    with pytest.raises(ConfigError, match="model.mode: must be one of"):
        from_dict({"model": {"mode": "ranking"}})


def test_classification_accepts_boolean_labels_and_regression_refuses_them(data):
    users, items, ratings = data
    cfg = dataclasses.replace(SMALL, mode="classification", epochs=2)
    from_ratings = fit_towers(users, items, ratings, cfg)
    from_labels = fit_towers(users, items, ratings >= 4.0, cfg)
    np.testing.assert_allclose(
        from_ratings.predict(users, items), from_labels.predict(users, items), atol=1e-6
    )
    with pytest.raises(RecsysError, match="regression mode trains on ratings"):
        fit_towers(users, items, ratings >= 4.0, SMALL)


def test_output_transform_reproduces_output_in_both_modes(data, fitted):
    scores = np.array([-1.0, -0.2, 0.0, 0.7, 1.0])
    slope, intercept, sigmoid = fitted.output_transform()
    assert not sigmoid
    np.testing.assert_allclose(slope * scores + intercept, fitted.to_rating(scores))
    np.testing.assert_allclose(fitted.output(scores), fitted.to_rating(scores))
    users, items, ratings = data
    clf = fit_towers(
        users, items, ratings, dataclasses.replace(SMALL, mode="classification", epochs=1)
    )
    slope, intercept, sigmoid = clf.output_transform()
    assert sigmoid and (slope, intercept) == clf.calibration
    np.testing.assert_allclose(clf.output(scores), 1 / (1 + np.exp(-(slope * scores + intercept))))


def test_genre_columns_line_up_by_name_a_new_genre_left_out_a_missing_one_zero(data, fitted):
    """The catalogue's genres change between nights: yesterday's model must still embed today's
    features (the gate judges it on them). A genre it never saw is left out; a genre it knew that
    today lacks is a zero column, which is what the features hold for "nothing in this genre"."""
    from recsys_core.model.two_tower import aligned

    users, items, _ = data
    known = ["u_a", "g_drama", "g_comedy"]
    today = pd.DataFrame({"g_new_genre": [1.0], "u_a": [2.0], "g_drama": [1.0]})
    out = aligned(today, known, "user")
    assert list(out.columns) == known and out.iloc[0].tolist() == [2.0, 1.0, 0.0]
    with pytest.raises(RecsysError, match=r"missing \['u_a', 'g_comedy'\]"):
        aligned(today.drop(columns="u_a"), known, "user")  # not a genre: refused by name
    with pytest.raises(RecsysError, match=r"unknown \['age'"):
        aligned(today.assign(age=3.0), known, "user")
