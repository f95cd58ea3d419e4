"""Bad input tables fail validation with errors naming the table, the column and the expectation."""

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys_core import columns as C
from recsys_core.errors import DataValidationError, MissingInputError
from recsys_core.generate import generate_dataset
from recsys_core.inputs import read_input, require_inputs
from recsys_core.validation import validate_frame


@pytest.fixture(scope="module")
def good_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("inputs")
    generate_dataset(out, users=60, items=40, interactions=600, seed=3)
    return out


def _replace(data_dir, table: str, new: pa.Table):
    shutil.rmtree(data_dir / table)
    (data_dir / table).mkdir()
    pq.write_table(new, data_dir / table / "part-0.parquet")


def _validate(data_dir, table, tmp_path):
    return validate_frame(table, read_input(data_dir, table).to_pandas(), report_dir=tmp_path / "report")


@pytest.mark.parametrize("table", C.INPUT_TABLES)
def test_generated_tables_pass_their_suites(good_data, tmp_path, table):
    summary = _validate(good_data, table, tmp_path)
    assert summary["failed"] == 0 and summary["rows"] > 0
    assert (tmp_path / "report" / f"{table}.json").is_file()


def test_missing_table_names_the_table(good_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(good_data, data)
    shutil.rmtree(data / C.USERS)
    with pytest.raises(MissingInputError, match="input table 'users' not found"):
        require_inputs(data)


def test_missing_column_names_table_column_and_expectation(good_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(good_data, data)
    _replace(data, C.INTERACTIONS, read_input(data, C.INTERACTIONS).drop_columns([C.TIMESTAMP]))
    with pytest.raises(DataValidationError) as err:
        _validate(data, C.INTERACTIONS, tmp_path)
    message = str(err.value)
    assert "table 'interactions'" in message
    assert "column timestamp: expect_column_to_exist" in message
    assert str(tmp_path / "report" / "interactions.json") in message


def test_non_numeric_rating_is_rejected_by_type(good_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(good_data, data)
    t = read_input(data, C.INTERACTIONS)
    as_text = pa.array([f"{v} stars" for v in t.column(C.RATING).to_pylist()])
    _replace(data, C.INTERACTIONS, t.set_column(t.column_names.index(C.RATING), C.RATING, as_text))
    with pytest.raises(DataValidationError) as err:
        _validate(data, C.INTERACTIONS, tmp_path)
    assert "column rating: expect_column_values_to_be_in_type_list" in str(err.value)
    assert err.value.table == C.INTERACTIONS


def test_empty_interactions_fail_the_row_count_expectation(good_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(good_data, data)
    _replace(data, C.INTERACTIONS, read_input(data, C.INTERACTIONS).slice(0, 0))
    with pytest.raises(DataValidationError, match="expect_table_row_count_to_be_between"):
        _validate(data, C.INTERACTIONS, tmp_path)


def test_duplicate_user_ids_fail_uniqueness(good_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(good_data, data)
    users = read_input(data, C.USERS)
    _replace(data, C.USERS, pa.concat_tables([users, users.slice(0, 2)]))
    with pytest.raises(DataValidationError, match="column user_id: expect_column_values_to_be_unique"):
        _validate(data, C.USERS, tmp_path)


def test_optional_demographics_may_be_absent(good_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(good_data, data)
    _replace(data, C.USERS, read_input(data, C.USERS).select([C.USER_ID, C.COUNTRY]))
    assert _validate(data, C.USERS, tmp_path)["failed"] == 0


def test_feature_template_checks_every_feature_column(tmp_path):
    import numpy as np
    import pandas as pd

    df = pd.DataFrame({C.ITEM_ID: [1, 2], C.AVG_RATING: [3.0, 4.0], C.RATING_COUNT: [1.0, 2.0],
                       "g_drama": [1.0, np.inf]})
    with pytest.raises(DataValidationError, match="column g_drama: expect_column_values_to_be_between"):
        validate_frame(C.ITEM_FEATURES, df, feature_columns=[C.AVG_RATING, C.RATING_COUNT, "g_drama"])
