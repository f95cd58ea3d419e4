"""The warehouse the recommendations are published to, chosen by URL (DuckDB embedded by default)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from recsys_core.errors import ConfigError

# Every published table is partitioned by ds; a publish replaces its ds and nothing else.
TABLES: dict[str, str] = {
    "recommendations": """
        ds DATE NOT NULL, user_id BIGINT NOT NULL, rank INTEGER NOT NULL, item_id BIGINT NOT NULL,
        score DOUBLE NOT NULL, predicted_rating DOUBLE NOT NULL, reason VARCHAR NOT NULL,
        model_version VARCHAR NOT NULL, run_id VARCHAR NOT NULL""",
    "item_neighbors": """
        ds DATE NOT NULL, item_id BIGINT NOT NULL, rank INTEGER NOT NULL, neighbor_id BIGINT NOT NULL,
        distance DOUBLE NOT NULL""",
    "items": """
        ds DATE NOT NULL, item_id BIGINT NOT NULL, title VARCHAR NOT NULL, year INTEGER,
        genres VARCHAR[] NOT NULL""",
}
PUBLISH_LOG = """
    ds DATE NOT NULL, run_id VARCHAR NOT NULL, table_name VARCHAR NOT NULL, rows BIGINT NOT NULL,
    model_version VARCHAR, published_at TIMESTAMP NOT NULL"""
LATEST_VIEW = """CREATE OR REPLACE VIEW recommendations_latest AS
    SELECT * FROM recommendations WHERE ds = (SELECT max(ds) FROM recommendations)"""


def duckdb_path(url: str) -> Path:
    """duckdb:///abs/path.duckdb -> /abs/path.duckdb; duckdb://rel/path.duckdb -> rel/path.duckdb."""
    prefix = "duckdb://"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ConfigError(f"warehouse URL {url!r}: expected duckdb:///path/to/file.duckdb")
    return Path(url[len(prefix) :])


class DuckDBWarehouse:
    """A DuckDB file: each publish is one transaction, so readers see the old or the new ds, never half."""

    def __init__(self, url: str):
        self.url = url
        self.path = duckdb_path(url)

    def connect(self, read_only: bool = False):
        import duckdb

        if read_only and not self.path.exists():
            raise ConfigError(f"no warehouse at {self.path}: run the pipeline first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return duckdb.connect(str(self.path), read_only=read_only)

    def publish(self, ds: str, run_id: str, model_version: str | None, tables: dict[str, pa.Table]) -> dict:
        """Replace partition ds of each table with the given rows, in one transaction."""
        day = dt.date.fromisoformat(ds)
        con = self.connect()
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute(f"CREATE TABLE IF NOT EXISTS publish_log ({PUBLISH_LOG})")
            counts = {}
            for name, rows in tables.items():
                con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({TABLES[name]})")
                con.execute(f"DELETE FROM {name} WHERE ds = ?", [day])
                con.register("staged", rows)
                cols = [c for c in rows.column_names if c != "ds"]
                con.execute(
                    f"INSERT INTO {name} (ds, {', '.join(cols)}) SELECT ?::DATE, {', '.join(cols)} FROM staged",
                    [day],
                )
                con.unregister("staged")
                counts[name] = rows.num_rows
                con.execute(
                    "INSERT INTO publish_log VALUES (?, ?, ?, ?, ?, now())",
                    [day, run_id, name, rows.num_rows, model_version],
                )
            con.execute(LATEST_VIEW)
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        finally:
            con.close()
        return counts

    def query(self, sql: str, params: list | None = None):
        """Run a read-only query and return a pandas DataFrame."""
        con = self.connect(read_only=True)
        try:
            return con.execute(sql, params or []).df()
        finally:
            con.close()


def open_warehouse(url: str) -> DuckDBWarehouse:
    if url.startswith("duckdb://"):
        return DuckDBWarehouse(url)
    raise ConfigError(f"warehouse URL {url!r}: unsupported scheme (supported: duckdb:///path)")
