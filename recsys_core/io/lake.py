"""The lake: Parquet datasets under one root, one partition per ds, each replaced atomically."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from recsys_core.errors import MissingInputError, RecsysError
from recsys_core.io.layout import PART_FILE, UNIQUE_SUFFIX_CHARS, partition_name


def check_ds(ds: str) -> str:
    try:
        dt.date.fromisoformat(ds)
    except (TypeError, ValueError) as exc:
        raise RecsysError(f"ds must be a date YYYY-MM-DD, got {ds!r}") from exc
    return ds


def write_json_atomically(path: Path, obj: dict) -> Path:
    """Write obj as JSON through a temporary file of its own and one rename: a reader sees the old file
    or the complete new one, and two writers never share a temporary file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:UNIQUE_SUFFIX_CHARS]}")
    try:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class Lake:
    """Paths of the datasets every step reads and writes, keyed by the run's ds."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def partition(self, dataset: str, ds: str) -> Path:
        return self.root / dataset / partition_name(check_ds(ds))

    def require(self, dataset: str, ds: str) -> Path:
        path = self.partition(dataset, ds)
        if not path.exists():
            raise MissingInputError(
                f"upstream partition {dataset} for ds={ds} not found at {path}; run the step that writes it first"
            )
        return path

    def staging(self, dataset: str, ds: str) -> Path:
        """A fresh folder beside the partition; `commit` swaps it in."""
        path = (
            self.root
            / dataset
            / f".staging-ds={check_ds(ds)}-{uuid.uuid4().hex[:UNIQUE_SUFFIX_CHARS]}"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def commit(self, staging: Path, dataset: str, ds: str) -> Path:
        """Replace the ds partition by the staged folder, so readers never see a half-written one."""
        final = self.partition(dataset, ds)
        old = None
        if final.exists():
            old = final.with_name(f".old-{final.name}-{uuid.uuid4().hex[:UNIQUE_SUFFIX_CHARS]}")
            os.replace(final, old)
        os.replace(staging, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return final

    @contextmanager
    def writing(self, dataset: str, ds: str) -> Iterator[Path]:
        """A staging folder to fill; committed as the ds partition when the block ends, removed when it
        fails (or is interrupted), so the published partition is the old one or the complete new one."""
        stage = self.staging(dataset, ds)
        stage.mkdir()
        try:
            yield stage
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        self.commit(stage, dataset, ds)

    @contextmanager
    def parquet_writer(self, dataset: str, ds: str) -> Iterator[PartWriter]:
        """A writer of the partition's one Parquet file, table by table (opened at the first table)."""
        with self.writing(dataset, ds) as stage:
            writer = PartWriter(stage / PART_FILE)
            try:
                yield writer
            finally:
                writer.close()

    def write_table(self, table: pa.Table, dataset: str, ds: str) -> Path:
        with self.writing(dataset, ds) as stage:
            pq.write_table(table, stage / PART_FILE)
        return self.partition(dataset, ds)

    def write_spark(self, df, dataset: str, ds: str) -> int:
        """Write a Spark DataFrame as the ds partition; returns the rows committed."""
        with self.writing(dataset, ds) as stage:
            df.write.mode("overwrite").parquet(str(stage))
        return self.count_rows(dataset, ds)

    def count_rows(self, dataset: str, ds: str) -> int:
        """Rows of a partition, from its Parquet footers: no data is read and no Spark job runs."""
        return pads.dataset(self.require(dataset, ds), format="parquet").count_rows()

    def read_table(self, dataset: str, ds: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.require(dataset, ds), columns=columns)

    def write_json(self, obj: dict, dataset: str, ds: str, name: str) -> Path:
        folder = self.partition(dataset, ds)
        folder.mkdir(parents=True, exist_ok=True)
        return write_json_atomically(folder / name, obj)

    def read_json(self, dataset: str, ds: str, name: str) -> dict:
        path = self.require(dataset, ds) / name
        if not path.exists():
            raise MissingInputError(f"{path} not found")
        return json.loads(path.read_text())


class PartWriter:
    """Appends Arrow tables to one Parquet file, taking the schema from the first table."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table, row_group_size: int | None = None) -> None:
        self._writer = self._writer or pq.ParquetWriter(self.path, table.schema)
        self._writer.write_table(table, row_group_size=row_group_size)
        self.rows += table.num_rows

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
