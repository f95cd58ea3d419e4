"""What a trigger may change: the allowed settings and their bounds, the params that set config keys,
and the latest ds a run may have."""

import datetime as dt

import pytest

from recsys_core.config import load_config
from recsys_core.trigger import (
    PARAM_SETTINGS,
    TRIGGER_SETTINGS,
    TriggerError,
    check_ds_not_ahead,
    settings_schema,
    trigger_overrides,
)

TODAY = dt.date(2026, 12, 1)


def test_params_and_settings_become_overrides_the_config_reads():
    params = {
        "top_n": 7,
        "model_mode": "regression",
        "tune_model": True,
        "ds": "2026-01-31",
        "settings": {"retrieval.new_items": 0, "model.epochs": 2},
    }
    lines = trigger_overrides(params)
    assert lines == [
        "ranking.top_n=7",
        'model.mode="regression"',
        "model.tune=true",
        "retrieval.new_items=0",
        "model.epochs=2",
    ]
    cfg = load_config(None, lines)
    assert (cfg.ranking.top_n, cfg.model.mode, cfg.model.tune) == (7, "regression", True)
    assert (cfg.retrieval.new_items, cfg.model.epochs) == (0, 2)


@pytest.mark.parametrize(
    "params", [{}, {"top_n": None, "model_mode": None}, {"top_n": "", "settings": {}}]
)
def test_unset_params_change_nothing(params):
    assert trigger_overrides(params) == []


def test_every_param_setting_is_an_allowed_setting_with_the_same_bounds():
    assert set(PARAM_SETTINGS.values()) <= set(TRIGGER_SETTINGS)


@pytest.mark.parametrize(
    "settings, named",
    [
        ({"evaluation.bless_margin": 100}, "evaluation.bless_margin"),  # switches off the gate
        ({"validation.max_null_share": 1.0}, "validation.max_null_share"),  # loosens validation
        ({"warehouse.url": "postgresql://elsewhere/db"}, "warehouse.url"),  # moves the data
        ({"spark.driver_memory": "200g"}, "spark.driver_memory"),  # sizes the cluster
        ({"ranking.top_n": 1001}, "ranking.top_n"),  # past its bound
        ({"ranking.top_n": 0}, "ranking.top_n"),
        ({"ranking.top_n": "20"}, "ranking.top_n"),  # a string is not an integer
        ({"model.tune": 1}, "model.tune"),  # nor 1 a boolean
        ({"model.mode": "ranking"}, "model.mode"),
        ({"model.epochs": True}, "model.epochs"),
    ],
)
def test_a_setting_not_allowed_or_out_of_bounds_is_refused_by_name(settings, named):
    with pytest.raises(TriggerError, match=f"trigger setting '?{named}"):
        trigger_overrides({"settings": settings})


def test_a_param_out_of_bounds_is_refused_like_the_setting_it_sets():
    with pytest.raises(TriggerError, match="ranking.top_n=5000"):
        trigger_overrides({"top_n": 5000})


@pytest.mark.parametrize("param", ["data_dir", "work_dir", "warehouse_url", "config_path"])
def test_a_param_the_dag_does_not_declare_is_refused(param):
    """Airflow passes a trigger's unknown conf keys on as params: the folders, the warehouse and the
    config file used to be params, and a trigger naming them must learn that they no longer are."""
    with pytest.raises(TriggerError, match=f"trigger param '{param}' is not accepted"):
        trigger_overrides({"ds": "", param: "/etc"})


def test_settings_must_be_an_object():
    with pytest.raises(TriggerError, match="object"):
        trigger_overrides({"settings": ["ranking.top_n=3"]})


def test_the_schema_allows_exactly_the_allowed_settings():
    schema = settings_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"] == TRIGGER_SETTINGS
    for key, rule in TRIGGER_SETTINGS.items():
        section, name = key.split(".")
        assert rule["description"], key
        # every allowed key is a real config key
        assert hasattr(getattr(load_config(None), section), name), key


@pytest.mark.parametrize("ds", ["2026-11-30", "2026-12-01", "2026-12-02", "2001-01-01"])
def test_a_ds_up_to_tomorrow_is_allowed(ds):
    assert check_ds_not_ahead(ds, TODAY) == ds


@pytest.mark.parametrize("ds", ["2026-12-03", "2099-12-31"])
def test_a_ds_after_tomorrow_is_refused(ds):
    with pytest.raises(TriggerError, match=f"ds {ds} lies after 2026-12-02"):
        check_ds_not_ahead(ds, TODAY)
