"""Every param of recsys_nightly refuses what is out of bounds, as Airflow checks a trigger's conf before
any task runs (one such trigger runs through `airflow dags test` in tests/integration)."""

import pytest

from tests.paths import PROJECT


@pytest.fixture(scope="module")
def params():
    """The params of the DAG as the scheduler and the API server hold it: serialized."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization

    bag = DagBag(dag_folder=str(PROJECT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return DagSerialization.from_dict(DagSerialization.to_dict(bag.dags["recsys_nightly"])).params


def trigger(params, conf: dict) -> dict:
    """The run's params for a trigger's conf, checked as Airflow checks them when it creates the run."""
    merged = params.deep_merge(conf)
    return merged.validate()


@pytest.mark.parametrize(
    "conf, param",
    [
        ({"top_n": 0}, "top_n"),
        ({"top_n": 1001}, "top_n"),
        ({"top_n": "ten"}, "top_n"),
        ({"ds": "31/01/2026"}, "ds"),
        ({"model_mode": "ranking"}, "model_mode"),
        ({"settings": ["ranking.top_n=3"]}, "settings"),  # an object of key: value, not lines
        # what a trigger may not change: the gate, validation, where data goes, the cluster's size
        ({"settings": {"evaluation.bless_margin": 100}}, "settings"),
        ({"settings": {"validation.max_null_share": 1.0}}, "settings"),
        ({"settings": {"warehouse.url": "postgresql://elsewhere/db"}}, "settings"),
        ({"settings": {"spark.driver_memory": "200g"}}, "settings"),
        ({"settings": {"ranking.top_n": 5000}}, "settings"),  # allowed, but past its bound
        ({"settings": {"model.tune": "yes"}}, "settings"),
    ],
)
def test_a_value_out_of_bounds_is_refused_naming_its_param(params, conf, param):
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match=f"param {param}"):
        trigger(params, conf)


def test_values_in_bounds_are_accepted_as_given(params):
    conf = {
        "top_n": 7,
        "model_mode": "regression",
        "ds": "2026-01-31",
        "settings": {"model.epochs": 2, "retrieval.new_items": 0},
    }
    assert {k: trigger(params, conf)[k] for k in conf} == conf


@pytest.mark.parametrize("param", ["data_dir", "work_dir", "warehouse_url", "config_path"])
def test_folders_warehouse_and_config_are_not_params(params, param):
    """They are the deployment's (the worker's environment and the connection recsys_warehouse)."""
    assert param not in params
