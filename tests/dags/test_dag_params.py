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
        ({"warehouse_url": "mysql://x"}, "warehouse_url"),
        ({"model_mode": "ranking"}, "model_mode"),
        ({"settings": ["not an override"]}, "settings"),
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
        "settings": ["model.epochs=2"],
    }
    assert {k: trigger(params, conf)[k] for k in conf} == conf
