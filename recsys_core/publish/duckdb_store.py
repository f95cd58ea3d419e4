"""DuckDB warehouse: one file, one writer process at a time (others wait for the file lock)."""

from __future__ import annotations

import time
from pathlib import Path

import pyarrow as pa

from recsys_core.errors import ConfigError, RecsysError, TransientError
from recsys_core.publish.warehouse import Warehouse

LOCK_WAIT_SECONDS = 600
LOCK_RETRY_SECONDS = 0.5  # between attempts to open a locked file: short next to a writer's hold


def duckdb_path(url: str) -> Path:
    """duckdb:///abs/path.duckdb -> /abs/path.duckdb; duckdb://rel/path.duckdb -> rel/path.duckdb."""
    prefix = "duckdb://"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ConfigError(f"warehouse URL {url!r}: expected duckdb:///path/to/file.duckdb")
    return Path(url[len(prefix) :])


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"

    def __init__(self, url: str):
        self.url = url
        self.path = duckdb_path(url)

    def connect(self, read_only: bool = False):
        import duckdb

        if read_only and not self.path.exists():
            raise ConfigError(f"no warehouse at {self.path}: run the pipeline first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:  # DuckDB lets one process write a file; a concurrent run waits its turn
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise RecsysError(f"cannot open warehouse {self.path}: {exc}") from exc
                if time.monotonic() > deadline:  # another writer still holds it: try again later
                    raise TransientError(
                        f"warehouse {self.path} still locked by another process after "
                        f"{LOCK_WAIT_SECONDS} s: {exc}"
                    ) from exc
                time.sleep(LOCK_RETRY_SECONDS)

    def sql(self, con, statement: str, params: list | tuple = ()) -> list[tuple]:
        cur = con.execute(statement, list(params))
        return cur.fetchall() if cur.description else []

    def bulk_load(self, con, table: str, rows: pa.Table | pa.RecordBatchReader) -> None:
        """Insert the rows (an Arrow table, or a stream DuckDB reads once, batch by batch)."""
        con.register("arrow_rows", rows)
        try:
            con.execute(f"INSERT INTO {table} SELECT * FROM arrow_rows")
        finally:
            con.unregister("arrow_rows")
