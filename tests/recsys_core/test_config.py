"""Tests of the typed pipeline configuration: file, overrides and validation."""

from __future__ import annotations

import dataclasses

import pytest

from recsys_core.config import (
    DEFAULT_AIRFLOW_HOME,
    DEFAULT_CONFIG_PATH,
    DEFAULT_DATA_DIR,
    DEFAULT_WORK_DIR,
    PROJECT_ROOT,
    Config,
    EvaluationConfig,
    ModelConfig,
    RankingConfig,
    RetrievalConfig,
    SimilarityConfig,
    SparkConfig,
    ValidationConfig,
    from_dict,
    load_config,
    parse_override,
)
from recsys_core.errors import ConfigError
from tests.paths import PROJECT, SHIPPED_CONFIG

SHIPPED = SHIPPED_CONFIG


def test_the_shipped_file_loads_to_exactly_the_code_defaults():
    loaded = load_config(SHIPPED)
    assert loaded == Config()
    assert loaded.to_dict() == Config().to_dict()
    # every field of every section is written in the file, so the file documents them all
    text = SHIPPED.read_text()
    for section in dataclasses.fields(Config):
        assert f"[{section.name}]" in text
        for key in dataclasses.fields(section.default_factory):
            assert f"\n{key.name} =" in text, f"{section.name}.{key.name} missing from {SHIPPED}"


def test_no_file_means_defaults_and_a_json_file_is_read(tmp_path):
    assert load_config() == Config()
    path = tmp_path / "c.json"
    path.write_text('{"ranking": {"top_n": 7}}')
    assert load_config(path).ranking == RankingConfig(top_n=7)


def test_a_file_value_is_applied_and_other_keys_keep_defaults(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[model]\nuser_layers = [16, 8]\nitem_layers = [8]\nl2 = 0\n")
    cfg = load_config(path)
    assert cfg.model == ModelConfig(user_layers=(16, 8), item_layers=(8,), l2=0.0)
    assert isinstance(cfg.model.l2, float)
    assert cfg.spark == SparkConfig()


def test_unknown_section_raises_naming_it():
    with pytest.raises(ConfigError, match=r"unknown config section \[modle\]"):
        from_dict({"modle": {"epochs": 1}})


def test_unknown_key_raises_naming_it():
    with pytest.raises(ConfigError, match=r"unknown key ranking\.top_k"):
        from_dict({"ranking": {"top_k": 5}})


def test_a_section_that_is_not_a_table_is_rejected():
    with pytest.raises(ConfigError, match=r"\[ranking\] must be a table"):
        from_dict({"ranking": 5})


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("ranking", "top_n", "20", r"ranking\.top_n: expected an integer"),
        ("model", "epochs", 2.5, r"model\.epochs: expected an integer"),
        ("ranking", "top_n", True, r"ranking\.top_n: booleans are not accepted"),
        ("model", "l2", False, r"model\.l2: booleans are not accepted"),
        ("model", "learning_rate", "fast", r"model\.learning_rate: expected a number"),
        ("model", "user_layers", 32, r"model\.user_layers: expected a list of integers"),
        ("model", "user_layers", "256,32", r"model\.user_layers: expected a list of integers"),
        ("model", "user_layers", [256, 32.0], r"model\.user_layers: expected a list of integers"),
        ("model", "user_layers", [True, 32], r"model\.user_layers: expected a list of integers"),
        ("spark", "master", 4, r"spark\.master: expected a string"),
    ],
)
def test_wrong_types_are_rejected(section, key, value, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({section: {key: value}})


def test_overrides_parse_to_typed_values():
    assert parse_override("ranking.top_n=5") == ("ranking", "top_n", 5)
    assert parse_override("model.user_layers=[8,4]") == ("model", "user_layers", [8, 4])
    assert parse_override("spark.master=local[2]") == ("spark", "master", "local[2]")
    assert parse_override("spark.master=local[*]") == ("spark", "master", "local[*]")
    assert parse_override('spark.driver_memory="2g"') == ("spark", "driver_memory", "2g")


def test_overrides_apply_on_top_of_the_file(tmp_path):
    cfg = load_config(
        SHIPPED,
        [
            "ranking.top_n=5",
            "model.user_layers=[8,4]",
            "model.item_layers=[6, 4]",
            "spark.master=local[2]",
        ],
    )
    assert cfg.ranking.top_n == 5
    assert cfg.model.user_layers == (8, 4)
    assert cfg.model.item_layers == (6, 4)
    assert cfg.spark.master == "local[2]"
    assert cfg.model.epochs == ModelConfig().epochs


@pytest.mark.parametrize("text", ["ranking.top_n", "top_n=5", "=5"])
def test_malformed_overrides_are_rejected(text):
    with pytest.raises(ConfigError, match="expected section.key=value"):
        parse_override(text)


def test_an_override_of_an_unknown_key_is_rejected():
    with pytest.raises(ConfigError, match=r"unknown key ranking\.topn"):
        load_config(None, ["ranking.topn=5"])


def test_similar_per_item_above_similarity_k_is_rejected():
    with pytest.raises(ConfigError, match=r"similar_per_item \(21\) exceeds similarity\.k \(20\)"):
        from_dict({"retrieval": {"similar_per_item": 21}})
    assert (
        from_dict({"retrieval": {"similar_per_item": 11}, "similarity": {"k": 11}}).similarity.k
        == 11
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"ranking": {"top_n": 0}}, r"config ranking\.top_n: must be positive, got 0"),
        ({"similarity": {"k": -1}}, r"config similarity\.k: must be positive, got -1"),
        ({"model": {"epochs": 0}}, r"config model\.epochs: must be positive"),
        ({"model": {"batch_size": -8}}, r"config model\.batch_size: must be positive"),
        ({"retrieval": {"country_items": 0}}, r"config retrieval\.country_items: must be positive"),
        ({"retrieval": {"new_items": -1}}, r"config retrieval\.new_items: must be >= 0, got -1"),
        (
            {"spark": {"shuffle_partitions": 0}},
            r"config spark\.shuffle_partitions: must be positive",
        ),
        (
            {"model": {"user_layers": [8, 0, 32]}},
            r"config model\.user_layers: needs at least one positive",
        ),
        ({"model": {"item_layers": []}}, r"config model\.item_layers: needs at least one positive"),
        ({"model": {"learning_rate": 0}}, r"learning_rate must be > 0"),
        ({"model": {"l2": -0.1}}, r"l2 >= 0, got .*l2=-0\.1"),
        (
            {"model": {"validation_share": 0.5}},
            r"config model\.validation_share: must be in \[0, 0\.5\)",
        ),
    ],
)
def test_non_positive_sizes_and_out_of_range_values_are_rejected(raw, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(raw)


def test_towers_ending_in_different_sizes_are_rejected_naming_both():
    with pytest.raises(ConfigError, match=r"user_layers ends in 8, item_layers ends in 4"):
        from_dict({"model": {"user_layers": [16, 8], "item_layers": [4]}})


def test_a_missing_file_raises(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_an_invalid_toml_file_raises(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[model\nepochs = 1\n")
    with pytest.raises(ConfigError, match="not valid toml"):
        load_config(path)


def test_spark_resources_are_checked_and_empty_or_zero_means_not_set():
    assert (
        SparkConfig().executor_memory,
        SparkConfig().executor_cores,
        SparkConfig().total_executor_cores,
    ) == ("", 0, 0)
    spark = load_config(
        None, ["spark.executor_memory=2g", "spark.executor_cores=2", "spark.driver_memory=512m"]
    ).spark
    assert (spark.executor_memory, spark.executor_cores, spark.driver_memory) == ("2g", 2, "512m")
    for raw, message in (
        ({"driver_memory": "lots"}, r"spark\.driver_memory: expected a size"),
        ({"driver_memory": ""}, r"spark\.driver_memory: expected a size"),
        ({"executor_memory": "2 GB"}, r"spark\.executor_memory: expected a size"),
        ({"executor_cores": -1}, r"spark\.executor_cores: must be >= 0"),
        ({"total_executor_cores": -2}, r"spark\.total_executor_cores: must be >= 0"),
    ):
        with pytest.raises(ConfigError, match=message):
            from_dict({"spark": raw})


@pytest.mark.parametrize(
    ("section", "kwargs", "message"),
    [
        (ModelConfig, {"epochs": 0}, r"config model\.epochs: must be positive, got 0"),
        (ModelConfig, {"batch_size": -1}, r"config model\.batch_size: must be positive"),
        (
            ModelConfig,
            {"user_layers": ()},
            r"config model\.user_layers: needs at least one positive",
        ),
        (
            ModelConfig,
            {"item_layers": (8, -4)},
            r"config model\.item_layers: needs at least one positive",
        ),
        (ModelConfig, {"mode": "ranking"}, r"config model\.mode: must be one of"),
        (ModelConfig, {"label": "clicked"}, r"config model\.label: must be one of"),
        (
            ModelConfig,
            {"negatives": -1},
            r"config model\.negatives and model\.sampled_negatives: must be >= 0, got -1 and 512",
        ),
        (
            ModelConfig,
            {"sampled_negatives": -1},
            r"config model\.negatives and model\.sampled_negatives: must be >= 0, got 4 and -1",
        ),
        (ModelConfig, {"history_length": 0}, r"config model\.history_length: must be positive"),
        (
            ModelConfig,
            {"history_half_life": 0.0},
            r"config model\.history_half_life: must be positive",
        ),
        (
            ModelConfig,
            {"initial_temperature": -0.1},
            r"config model\.initial_temperature: must be positive",
        ),
        (ModelConfig, {"logq_weight": -0.5}, r"config model\.logq_weight: must be >= 0, got -0\.5"),
        (ModelConfig, {"id_dropout": 1.0}, r"config model\.id_dropout: must be in \[0, 1\)"),
        (ModelConfig, {"id_dropout": -0.1}, r"config model\.id_dropout: must be in \[0, 1\)"),
        (
            ModelConfig,
            {"weight_averaging": 1.0},
            r"config model\.weight_averaging: must be in \[0, 1\)",
        ),
        (ModelConfig, {"learning_rate": 0.0}, r"learning_rate must be > 0"),
        (ModelConfig, {"l2": -1e-3}, r"l2 >= 0, got .*l2=-0\.001"),
        (
            ModelConfig,
            {"validation_share": 0.5},
            r"config model\.validation_share: must be in \[0, 0\.5\)",
        ),
        (ValidationConfig, {"chunk_rows": 0}, r"config validation\.chunk_rows: must be positive"),
        (
            ValidationConfig,
            {"max_orphan_share": 1.0},
            r"config validation\.max_orphan_share: must be in \[0, 1\)",
        ),
        (
            EvaluationConfig,
            {"holdout_user_share": 1.0},
            r"config evaluation: holdout_user_share must be in",
        ),
        (
            EvaluationConfig,
            {"bless_margin": -0.1},
            r"config evaluation: .*bless_margin >= 0, got 0\.1 and -0\.1",
        ),
        (SimilarityConfig, {"k": 0}, r"config similarity\.k: must be positive, got 0"),
        (RankingConfig, {"top_n": -3}, r"config ranking\.top_n: must be positive, got -3"),
        (
            SparkConfig,
            {"shuffle_partitions": 0},
            r"config spark\.shuffle_partitions: must be positive",
        ),
        (SparkConfig, {"driver_memory": "lots"}, r"config spark\.driver_memory: expected a size"),
        (
            SparkConfig,
            {"executor_memory": "2 GB"},
            r"config spark\.executor_memory: expected a size",
        ),
        (SparkConfig, {"executor_cores": -1}, r"config spark\.executor_cores: must be >= 0"),
        (
            SparkConfig,
            {"total_executor_cores": -1},
            r"config spark\.total_executor_cores: must be >= 0",
        ),
    ],
)
def test_a_section_built_directly_with_an_invalid_value_raises_naming_the_key(
    section, kwargs, message
):
    with pytest.raises(ConfigError, match=message):
        section(**kwargs)
    with pytest.raises(ConfigError, match=message):  # a copy with a change is checked too
        dataclasses.replace(section(), **kwargs)


def test_every_section_builds_with_its_defaults_and_valid_values():
    for section in dataclasses.fields(Config):
        section.default_factory()
    assert (
        SparkConfig(driver_memory="512m", executor_memory="2g", executor_cores=2).executor_cores
        == 2
    )
    assert (
        ModelConfig(user_layers=(16, 8), item_layers=(8,), l2=0.0, validation_share=0.0).l2 == 0.0
    )


def test_zero_retrieval_sizes_and_unequal_towers_build_alone_but_not_in_a_config():
    # retrieval's tests switch sources off with size 0 and build_model has its own check of the
    # towers, so these two are the pipeline's rules, checked by Config with the messages of the file
    off = RetrievalConfig(
        recent_items=0, similar_per_item=0, top_genres=0, items_per_genre=0, country_items=0
    )
    with pytest.raises(
        ConfigError, match=r"config retrieval\.recent_items: must be positive, got 0"
    ):
        Config(retrieval=off)
    with pytest.raises(
        ConfigError, match=r"config retrieval\.country_items: must be positive, got 0"
    ):
        Config(retrieval=RetrievalConfig(country_items=0))
    # the new arrivals are the one source that 0 switches off in a config too
    assert Config(retrieval=RetrievalConfig(new_items=0)).retrieval.new_items == 0
    unequal = ModelConfig(user_layers=(16, 8), item_layers=(4,))
    with pytest.raises(ConfigError, match=r"user_layers ends in 8, item_layers ends in 4"):
        Config(model=unequal)


def test_the_cross_section_check_holds_for_configs_built_directly():
    with pytest.raises(ConfigError, match=r"similar_per_item \(21\) exceeds similarity\.k \(20\)"):
        Config(retrieval=RetrievalConfig(similar_per_item=21))
    both = Config(retrieval=RetrievalConfig(similar_per_item=30), similarity=SimilarityConfig(k=30))
    assert both.similarity.k == 30


@pytest.mark.parametrize("text", ["model.tune=false", "model.tune=False", "model.tune=FALSE"])
def test_a_boolean_key_takes_true_or_false_in_any_case(text):
    assert load_config(None, ["model.tune=true"]).model.tune is True
    assert load_config(None, [text]).model.tune is False


@pytest.mark.parametrize("text", ["model.tune=1", "model.tune=yes", "model.tune=[true]"])
def test_a_boolean_key_refuses_anything_but_true_or_false(text):
    with pytest.raises(ConfigError, match=r"config model\.tune: expected true or false"):
        load_config(None, [text])


def test_the_default_paths_are_in_the_project():
    assert PROJECT_ROOT == PROJECT
    assert DEFAULT_CONFIG_PATH == SHIPPED_CONFIG and DEFAULT_CONFIG_PATH.is_file()
    assert DEFAULT_WORK_DIR == PROJECT / "data"
    assert DEFAULT_DATA_DIR == PROJECT / "data" / "sample"
    assert DEFAULT_AIRFLOW_HOME == PROJECT / ".airflow"
