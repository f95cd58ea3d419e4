"""Lake partitions are keyed by ds and replaced whole; inputs are conformed to their contracts."""

import pyarrow as pa
import pytest

from recsys_core.errors import MissingInputError, RecsysError
from recsys_core.io.inputs import conform, require_inputs, write_input
from recsys_core.io.lake import Lake


def test_write_replaces_the_partition_and_leaves_other_ds_alone(tmp_path):
    lake = Lake(tmp_path)
    lake.write_table(pa.table({"a": [1, 2, 3]}), "t", "2026-01-01")
    lake.write_table(pa.table({"a": [9]}), "t", "2026-01-02")
    lake.write_table(pa.table({"a": [4]}), "t", "2026-01-01")
    assert lake.read_table("t", "2026-01-01").column("a").to_pylist() == [4]
    assert lake.read_table("t", "2026-01-02").column("a").to_pylist() == [9]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["ds=2026-01-01", "ds=2026-01-02"]


def test_missing_partition_names_dataset_and_ds(tmp_path):
    with pytest.raises(MissingInputError, match="item_neighbors for ds=2026-01-01"):
        Lake(tmp_path).require("item_neighbors", "2026-01-01")


def test_ds_must_be_a_date(tmp_path):
    with pytest.raises(RecsysError, match="YYYY-MM-DD"):
        Lake(tmp_path).partition("t", "2026/01/01")


def test_conform_orders_and_casts_to_the_contract():
    t = conform(
        "interactions",
        pa.table(
            {"rating": [4.5], "timestamp": [1], "item_id": [2], "user_id": [3], "extra": ["x"]}
        ),
    )
    assert t.column_names == ["user_id", "item_id", "rating", "timestamp"]
    assert t.schema.field("rating").type == pa.float32()


def test_require_inputs_names_the_missing_table(tmp_path):
    write_input(tmp_path, "users", pa.table({"user_id": [1], "country": ["US"]}))
    write_input(
        tmp_path,
        "items",
        pa.table({"item_id": [1], "title": ["a"], "year": [2000], "genres": [["Drama"]]}),
    )
    with pytest.raises(MissingInputError, match="input table 'interactions' not found"):
        require_inputs(tmp_path)


def test_a_failed_write_removes_its_staging_and_keeps_the_published_partition(tmp_path):
    lake = Lake(tmp_path)
    lake.write_table(pa.table({"a": [1, 2]}), "t", "2026-01-01")
    with pytest.raises(RuntimeError, match="half way"):
        with lake.parquet_writer("t", "2026-01-01") as out:
            out.write(pa.table({"a": [7]}))
            raise RuntimeError("half way")
    assert lake.read_table("t", "2026-01-01").column("a").to_pylist() == [1, 2]
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["ds=2026-01-01"]


def test_the_parquet_writer_commits_every_table_written_and_counts_them(tmp_path):
    lake = Lake(tmp_path)
    with lake.parquet_writer("t", "2026-01-01") as out:
        out.write(pa.table({"a": [1, 2]}))
        out.write(pa.table({"a": [3]}))
    assert out.rows == 3 == lake.count_rows("t", "2026-01-01")
    assert lake.read_table("t", "2026-01-01").column("a").to_pylist() == [1, 2, 3]
