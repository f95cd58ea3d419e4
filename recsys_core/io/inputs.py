"""Reading and writing the three input tables (users, items, interactions) as Parquet datasets."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from recsys_core.columns import INPUT_TABLES
from recsys_core.errors import CorruptInputError, MissingInputError, TransientError
from recsys_core.io.contracts import contract
from recsys_core.io.key_chunks import key_chunks
from recsys_core.io.layout import PART_FILE

log = logging.getLogger(__name__)


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
        self._writer = pq.ParquetWriter(self.dir / PART_FILE, schema)

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


class PartitionNotArrived(MissingInputError):
    """A table partitioned by ds has no partition for this ds yet: the feed may still deliver it."""


def partition_path(data_dir: str | Path, table: str, ds: str | None) -> Path:
    """<data>/<table>/ds=<ds>/ when the table is partitioned by ds, else <data>/<table>/ (one snapshot)."""
    path = table_path(data_dir, table)
    if ds is not None and path.is_dir() and any(p.name.startswith("ds=") for p in path.iterdir()):
        part = path / f"ds={ds}"
        if not part.is_dir():
            raise PartitionNotArrived(
                f"input table '{table}' has no partition ds={ds} under {path}"
            )
        return part
    return path


def wait_for_inputs(
    data_dir: str | Path, ds: str, wait_seconds: float, poll_seconds: float = 15.0
) -> dict[str, Path]:
    """require_inputs, waiting up to wait_seconds (polling every poll_seconds, or a twentieth of the
    wait when that is shorter) for a partition of ds that has not arrived yet; still missing then,
    TransientError (the task retries later). A table that is not there at all fails at once
    (MissingInputError). A feed should land a partition whole (write, then rename the folder)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return require_inputs(data_dir, ds)
        except PartitionNotArrived as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransientError(
                    f"{exc}: not arrived after waiting {wait_seconds:.0f} s "
                    "(validation.input_wait_seconds); the task retries later"
                ) from exc
            log.info("%s; waiting (%.0f s left)", exc, left)
            time.sleep(min(poll_seconds, max(1.0, wait_seconds / 20), left))


def require_inputs(data_dir: str | Path, ds: str | None = None) -> dict[str, Path]:
    """Paths of the three input tables for ds; a missing one raises MissingInputError naming it."""
    paths = {t: partition_path(data_dir, t, ds) for t in INPUT_TABLES}
    for table, path in paths.items():
        if not path.exists() or not any(path.rglob("*.parquet")):
            raise MissingInputError(
                f"input table '{table}' not found: no Parquet files under {path}"
            )
    return paths


@contextmanager
def _readable(table: str, path: Path):
    """A file that is not Parquet as CorruptInputError (bad data: no retry), an error of the file
    system while reading as TransientError (a retry may pass), each naming the table and its path."""
    try:
        yield
    except pa.ArrowInvalid as exc:
        raise CorruptInputError(
            f"input table '{table}' at {path} cannot be read as Parquet: {exc}"
        ) from exc
    except OSError as exc:
        raise TransientError(f"input table '{table}' at {path}: read error: {exc}") from exc


def input_chunks(
    data_dir: str | Path,
    table: str,
    key: str | None,
    rows_per_chunk: int,
    ds: str | None = None,
    spill_root: Path | None = None,
) -> Iterator[pd.DataFrame]:
    """The input table as stored, as pandas chunks of about rows_per_chunk rows, every key's rows in one
    chunk (key_chunks.py); spill files go under spill_root (default: the system's temporary folder)."""
    path = require_inputs(data_dir, ds)[table]
    with _readable(table, path):
        yield from key_chunks(
            pads.dataset(path, format="parquet", partitioning="hive"),
            key,
            rows_per_chunk,
            spill_root,
        )


def input_batches(
    data_dir: str | Path, table: str, ds: str | None = None
) -> Iterator[pa.RecordBatch]:
    """The input table as stored, record batch by record batch, in file order."""
    path = require_inputs(data_dir, ds)[table]
    with _readable(table, path):
        yield from pads.dataset(path, format="parquet", partitioning="hive").to_batches()


def read_input(
    data_dir: str | Path, table: str, columns: list[str] | None = None, ds: str | None = None
) -> pa.Table:
    """Read an input table as stored (no casting: validation must see the data as it is)."""
    path = require_inputs(data_dir, ds)[table]
    with _readable(table, path):
        return pq.read_table(path, columns=columns)
