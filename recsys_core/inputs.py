"""Reading and writing the three input tables (users, items, interactions) as Parquet datasets."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from recsys_core.columns import INPUT_TABLES
from recsys_core.errors import MissingInputError
from recsys_core.schemas import contract


def table_path(data_dir: str | Path, table: str) -> Path:
    return Path(data_dir) / table


def conform(table: str, data: pa.Table) -> pa.Table:
    """Cast `data` to the contract of `table`: its columns in contract order, optional ones kept if present."""
    spec = contract(table)
    present = [c for c in spec.names if c in data.column_names]
    return data.select(present).cast(spec.arrow_schema(present))


class InputWriter:
    """Writes one input table as a Parquet dataset, row group by row group, so it never holds it all."""

    def __init__(self, data_dir: str | Path, table: str, schema: pa.Schema):
        self.dir = table_path(data_dir, table)
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        self.table = table
        self._writer = pq.ParquetWriter(self.dir / "part-00000.parquet", schema)

    def write(self, data: pa.Table) -> None:
        self._writer.write_table(conform(self.table, data))

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> InputWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_input(data_dir: str | Path, table: str, data: pa.Table) -> Path:
    """Write a whole input table (conformed to its contract) under data_dir/table/."""
    data = conform(table, data)
    with InputWriter(data_dir, table, data.schema) as writer:
        writer.write(data)
    return table_path(data_dir, table)


def require_inputs(data_dir: str | Path) -> dict[str, Path]:
    """Paths of the three input tables; a missing one raises MissingInputError naming it."""
    paths = {t: table_path(data_dir, t) for t in INPUT_TABLES}
    for table, path in paths.items():
        if not path.exists() or not any(path.rglob("*.parquet")):
            raise MissingInputError(f"input table '{table}' not found: no Parquet files under {path}")
    return paths


def read_input(data_dir: str | Path, table: str, columns: list[str] | None = None) -> pa.Table:
    """Read an input table as stored (no casting: validation must see the data as it is)."""
    path = require_inputs(data_dir)[table]
    return pq.read_table(path, columns=columns)
