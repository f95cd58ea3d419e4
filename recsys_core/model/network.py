"""The Keras graph of SEED.md's two towers: user MLP and item MLP, L2-normalised outputs, their dot product,
and the output of the chosen model function (regression, or classification through a sigmoid)."""

from __future__ import annotations

from recsys_core.config import ModelConfig
from recsys_core.errors import ConfigError

# the classification output sigmoid(w * v_u.v_m + b) starts at w = 5: unit vectors' dot products lie in
# [-1, 1], and a smaller w would start every probability near 0.5
INITIAL_TEMPERATURE = 5.0


def _require_equal_outputs(cfg: ModelConfig) -> None:
    if cfg.user_layers[-1] != cfg.item_layers[-1]:
        raise ConfigError(
            f"user tower outputs {cfg.user_layers[-1]} values but item tower outputs "
            f"{cfg.item_layers[-1]}: both towers must end in the same size"
        )


def mlp(name: str, widths: tuple[int, ...], l2: float):
    """One tower's MLP: ReLU layers of `widths`, the last one linear, every kernel L2-regularised."""
    import keras

    reg = keras.regularizers.l2(l2) if l2 > 0 else None
    layers = [keras.layers.Dense(w, activation="relu", kernel_regularizer=reg) for w in widths[:-1]]
    layers.append(keras.layers.Dense(widths[-1], activation="linear", kernel_regularizer=reg))
    return keras.Sequential(layers, name=name)


def build_model(
    n_user_features: int, n_item_features: int, cfg: ModelConfig, steps_per_execution: int = 1
):
    """The Keras model: v_u = norm(userMLP(x_u)), v_m = norm(itemMLP(x_m)), output v_u . v_m."""
    import keras

    _require_equal_outputs(cfg)

    input_user = keras.Input(shape=(n_user_features,), name="x_u")
    input_item = keras.Input(shape=(n_item_features,), name="x_m")
    vu = keras.layers.UnitNormalization(axis=1, name="v_u")(
        mlp("user_tower", cfg.user_layers, cfg.l2)(input_user)
    )
    vm = keras.layers.UnitNormalization(axis=1, name="v_m")(
        mlp("item_tower", cfg.item_layers, cfg.l2)(input_item)
    )
    output = keras.layers.Dot(axes=1, name="score")([vu, vm])
    loss = "mse"
    if cfg.mode == "classification":
        # sigmoid(w * v_u.v_m + b): a learned temperature and bias, because the dot product of unit
        # vectors lies in [-1, 1] and a bare sigmoid of it cannot say more than 0.27..0.73.
        # w >= 0 (a constraint) keeps the ranking by v_u.v_m, which retrieval and ranking use, unchanged.
        output = keras.layers.Dense(
            1,
            activation="sigmoid",
            name="probability",
            kernel_initializer=keras.initializers.Constant(INITIAL_TEMPERATURE),
            kernel_constraint=keras.constraints.NonNeg(),
        )(output)
        loss = "binary_crossentropy"
    model = keras.Model([input_user, input_item], output, name="two_tower")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate),
        loss=loss,
        steps_per_execution=steps_per_execution,
    )
    return model


def score_network(keras_model):
    """The network up to v_u . v_m for already scaled inputs (the "score" layer, before any sigmoid)."""
    import keras

    return keras.Model(keras_model.inputs, keras_model.get_layer("score").output)


# the inputs of the softmax towers, in the order of the Keras model's inputs (user side, then item side)
USER_INPUTS = ("x_u", "user_index", "history")
ITEM_INPUTS = ("x_m", "item_index")


def build_softmax_model(
    n_user_features: int,
    n_item_features: int,
    n_user_ids: int,
    n_item_ids: int,
    cfg: ModelConfig,
):
    """The softmax towers: v_u = norm(userMLP(x_u, user id embedding, pooled recent item ids)) and
    v_m = norm(itemMLP(x_m, item id embedding)), output v_u . v_m. The item id embeddings are shared
    by the item tower and the history pooling. Id vocabularies count index 0 ("no id") in their size.
    Not compiled: the softmax loss over a batch's items is computed by the training loop."""
    import keras

    from recsys_core.model.layers import IdEmbedding, RecencyPool

    _require_equal_outputs(cfg)
    dim = cfg.user_layers[-1]
    x_u = keras.Input(shape=(n_user_features,), name=USER_INPUTS[0])
    user_index = keras.Input(shape=(), dtype="int32", name=USER_INPUTS[1])
    history = keras.Input(shape=(cfg.history_length,), dtype="int32", name=USER_INPUTS[2])
    x_m = keras.Input(shape=(n_item_features,), name=ITEM_INPUTS[0])
    item_index = keras.Input(shape=(), dtype="int32", name=ITEM_INPUTS[1])
    user_ids = IdEmbedding(n_user_ids, dim, cfg.id_dropout, cfg.seed, name="user_ids")
    item_ids = IdEmbedding(n_item_ids, dim, cfg.id_dropout, cfg.seed + 1, name="item_ids")
    recent = RecencyPool(cfg.history_half_life, name="recent_items")(
        item_ids(history, drop=False), history
    )
    user_in = keras.layers.Concatenate(name="user_inputs")([x_u, user_ids(user_index), recent])
    item_in = keras.layers.Concatenate(name="item_inputs")([x_m, item_ids(item_index)])
    vu = keras.layers.UnitNormalization(axis=1, name="v_u")(
        mlp("user_tower", cfg.user_layers, cfg.l2)(user_in)
    )
    vm = keras.layers.UnitNormalization(axis=1, name="v_m")(
        mlp("item_tower", cfg.item_layers, cfg.l2)(item_in)
    )
    score = keras.layers.Dot(axes=1, name="score")([vu, vm])
    return keras.Model([x_u, user_index, history, x_m, item_index], score, name="softmax_towers")
