"""Input tables damaged one way each, and the message that names each damage."""

import shutil

import pyarrow as pa
import pyarrow.parquet as pq


def damaged_copy(data, folder, damage):
    """A copy of the inputs whose interactions table is damaged one way."""
    copy = folder / "data"
    shutil.copytree(data, copy)
    inter = pq.read_table(copy / "interactions")
    shutil.rmtree(copy / "interactions")
    if damage == "missing_table":
        return copy
    (copy / "interactions").mkdir()
    if damage == "missing_column":
        inter = inter.drop_columns(["rating"])
    elif damage == "non_numeric_rating":
        ratings = pa.array([str(v) for v in inter.column("rating").to_pylist()])
        inter = inter.set_column(2, "rating", ratings)
    else:
        inter = inter.slice(0, 0)
    pq.write_table(inter, copy / "interactions" / "part-0.parquet")
    return copy


# the message each damage is named by; missing_column also runs through Airflow (tests/integration)
DAMAGE_ERRORS = {
    "missing_column": "column rating: expect_column_to_exist",
    "non_numeric_rating": "column rating: expect_column_values_to_be_in_type_list",
    "empty_interactions": "expect_table_row_count_to_be_between",
    "missing_table": "input table 'interactions' not found",
}
