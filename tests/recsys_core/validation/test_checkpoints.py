"""The expectation suites: good tables pass; each kind of bad input fails naming table, column and rule."""

import numpy as np
import pandas as pd
import pytest

from recsys_core import columns as C
from recsys_core.datasets.generate import generate_dataset
from recsys_core.errors import DataValidationError
from recsys_core.io import layout as L
from recsys_core.io.inputs import read_input
from recsys_core.io.layout import DOCS_INDEX
from recsys_core.validation.checkpoints import (
    end_of_day_epoch,
    interaction_parameters,
    validate_frame,
)

DS = "2026-01-31"


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    out = tmp_path_factory.mktemp("inputs")
    generate_dataset(out, users=60, items=40, interactions=600, seed=3)
    return {t: read_input(out, t).to_pandas() for t in C.INPUT_TABLES}


def check(frames, table, df, tmp_path, share=0.01):
    params = (
        interaction_parameters(frames[C.USERS][C.USER_ID], frames[C.ITEMS][C.ITEM_ID], DS, share)
        if table == C.INTERACTIONS
        else None
    )
    return validate_frame(table, df, tmp_path, parameters=params)


def failure(frames, table, df, tmp_path, share=0.01) -> DataValidationError:
    with pytest.raises(DataValidationError) as err:
        check(frames, table, df, tmp_path, share)
    return err.value


@pytest.mark.parametrize("table", C.INPUT_TABLES)
def test_generated_tables_pass_and_write_data_docs(frames, tmp_path, table):
    summary = check(frames, table, frames[table], tmp_path)
    assert summary["failed"] == 0 and summary["rows"] == len(frames[table])
    assert (tmp_path / DOCS_INDEX).is_file() and (tmp_path / f"{table}.json").is_file()


def test_dropped_column_is_named_with_the_data_docs_path(frames, tmp_path):
    err = failure(
        frames, C.INTERACTIONS, frames[C.INTERACTIONS].drop(columns=[C.TIMESTAMP]), tmp_path
    )
    assert err.table == C.INTERACTIONS
    assert err.failures == [
        "column timestamp: expect_column_to_exist failed"
    ]  # consequences not repeated
    assert str(tmp_path / DOCS_INDEX) in str(err) and (tmp_path / DOCS_INDEX).is_file()


def test_renamed_column_is_reported_as_missing(frames, tmp_path):
    err = failure(frames, C.USERS, frames[C.USERS].rename(columns={C.COUNTRY: "region"}), tmp_path)
    assert "column country: expect_column_to_exist failed" in str(err)


def test_retyped_key_fails_the_type_rule(frames, tmp_path):
    df = frames[C.ITEMS].assign(item_id=frames[C.ITEMS][C.ITEM_ID].astype(str))
    assert "column item_id: expect_column_values_to_be_in_type_list" in str(
        failure(frames, C.ITEMS, df, tmp_path)
    )


def test_non_numeric_rating_fails_the_type_rule(frames, tmp_path):
    df = frames[C.INTERACTIONS].assign(
        rating=frames[C.INTERACTIONS][C.RATING].map(lambda r: f"{r} stars")
    )
    assert "column rating: expect_column_values_to_be_in_type_list" in str(
        failure(frames, C.INTERACTIONS, df, tmp_path)
    )


def test_null_keys_are_counted(frames, tmp_path):
    df = frames[C.USERS].astype({C.USER_ID: "float64"})
    df.loc[:2, C.USER_ID] = np.nan
    err = failure(frames, C.USERS, df, tmp_path)
    assert "column user_id: expect_column_values_to_not_be_null failed (3 row(s) unexpected" in str(
        err
    )


def test_duplicate_ids_fail_uniqueness(frames, tmp_path):
    df = pd.concat([frames[C.USERS], frames[C.USERS].head(2)])
    assert "column user_id: expect_column_values_to_be_unique" in str(
        failure(frames, C.USERS, df, tmp_path)
    )


def test_ratings_out_of_range_are_counted(frames, tmp_path):
    df = frames[C.INTERACTIONS].copy()
    df.loc[:4, C.RATING] = 11.0
    err = failure(frames, C.INTERACTIONS, df, tmp_path)
    assert "column rating: expect_column_values_to_be_between" in str(
        err
    ) and "5 row(s) unexpected" in str(err)


def test_timestamps_after_the_run_date_fail(frames, tmp_path):
    df = frames[C.INTERACTIONS].copy()
    df.loc[:1, C.TIMESTAMP] = end_of_day_epoch(DS) + 1
    err = failure(frames, C.INTERACTIONS, df, tmp_path)
    assert "column timestamp: expect_column_values_to_be_between" in str(
        err
    ) and "2 row(s) unexpected" in str(err)


def test_end_of_day_is_the_last_second_of_ds():
    assert end_of_day_epoch("1970-01-01") == 86399


def test_orphans_above_the_allowed_share_fail_below_it_pass(frames, tmp_path):
    df = frames[C.INTERACTIONS].copy()
    df.loc[:5, C.USER_ID] = 10_000_000  # 6 of 600 rows = 1%
    err = failure(frames, C.INTERACTIONS, df, tmp_path, share=0.005)
    assert "column user_id: expect_column_values_to_not_be_in_set" in str(
        err
    ) and "6 row(s) unexpected" in str(err)
    assert check(frames, C.INTERACTIONS, df, tmp_path, share=0.02)["failed"] == 0


def test_empty_interactions_fail_the_row_count_rule(frames, tmp_path):
    err = failure(frames, C.INTERACTIONS, frames[C.INTERACTIONS].head(0), tmp_path)
    assert "expect_table_row_count_to_be_between" in str(err)


def test_optional_demographics_may_be_absent(frames, tmp_path):
    assert check(frames, C.USERS, frames[C.USERS][[C.USER_ID, C.COUNTRY]], tmp_path)["failed"] == 0


def test_feature_template_checks_every_feature_column(tmp_path):
    df = pd.DataFrame(
        {
            C.ITEM_ID: [1, 2],
            C.AVG_RATING: [3.0, 4.0],
            C.RATING_COUNT: [1.0, 2.0],
            "g_drama": [1.0, np.inf],
            "g_war": [np.nan, 0.0],
        }
    )
    with pytest.raises(DataValidationError) as err:
        validate_frame(
            L.ITEM_FEATURES,
            df,
            tmp_path,
            feature_columns=[C.AVG_RATING, C.RATING_COUNT, "g_drama", "g_war"],
        )
    assert "column g_drama: expect_column_values_to_be_between" in str(err.value)
    assert "column g_war: expect_column_values_to_not_be_null" in str(err.value)
