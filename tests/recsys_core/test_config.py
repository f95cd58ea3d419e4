"""Tests of the typed pipeline configuration: file, overrides and validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from recsys_core.config import (
    Config,
    ModelConfig,
    RankingConfig,
    SparkConfig,
    from_dict,
    load_config,
    parse_override,
)
from recsys_core.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "recsys.toml"


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
    assert (SparkConfig().executor_memory, SparkConfig().executor_cores, SparkConfig().total_executor_cores) == ("", 0, 0)
    spark = load_config(None, ["spark.executor_memory=2g", "spark.executor_cores=2", "spark.driver_memory=512m"]).spark
    assert (spark.executor_memory, spark.executor_cores, spark.driver_memory) == ("2g", 2, "512m")
    for raw, message in (({"driver_memory": "lots"}, r"spark\.driver_memory: expected a size"),
                         ({"driver_memory": ""}, r"spark\.driver_memory: expected a size"),
                         ({"executor_memory": "2 GB"}, r"spark\.executor_memory: expected a size"),
                         ({"executor_cores": -1}, r"spark\.executor_cores: must be >= 0"),
                         ({"total_executor_cores": -2}, r"spark\.total_executor_cores: must be >= 0")):
        with pytest.raises(ConfigError, match=message):
            from_dict({"spark": raw})
