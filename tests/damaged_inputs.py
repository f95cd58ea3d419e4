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


def rewritten_copy(data, folder, table, change):
    """A copy of the inputs under folder/data whose `table` is change(rows): rows is the table as stored
    (a pyarrow Table), the result is written back as the table's one Parquet file."""
    copy = folder / "data"
    shutil.copytree(data, copy)
    rows = pq.read_table(copy / table)
    shutil.rmtree(copy / table)
    (copy / table).mkdir()
    pq.write_table(change(rows), copy / table / "part-0.parquet")
    return copy


def with_values(rows, column, values, type=None):
    """rows with `column` replaced by values (a list, typed by pyarrow unless type is given)."""
    return rows.set_column(rows.column_names.index(column), column, pa.array(values, type=type))


def with_first(rows, column, *firsts, type=None):
    """rows with the first values of `column` replaced by firsts, the rest as stored."""
    values = rows.column(column).to_pylist()
    values[: len(firsts)] = firsts
    return with_values(rows, column, values, type or rows.schema.field(column).type)
