"""The warehouse recommendations are published to, chosen by URL: DuckDB (embedded) or PostgreSQL."""

from __future__ import annotations

from recsys_core.errors import ConfigError
from recsys_core.warehouse.duckdb_store import DuckDBWarehouse, duckdb_path
from recsys_core.warehouse.publish import PublishResult, Warehouse, checksum
from recsys_core.warehouse.schema import LATEST_VIEW, PUBLISHED

__all__ = ["DuckDBWarehouse", "PublishResult", "Warehouse", "checksum", "duckdb_path", "open_warehouse",
           "LATEST_VIEW", "PUBLISHED"]


def open_warehouse(url: str) -> Warehouse:
    """duckdb:///path/file.duckdb or postgresql://user@host:port/db."""
    if url.startswith("duckdb://"):
        return DuckDBWarehouse(url)
    if url.startswith(("postgresql://", "postgres://")):
        from recsys_core.warehouse.postgres_store import PostgresWarehouse

        return PostgresWarehouse(url)
    raise ConfigError(f"warehouse URL {url!r}: unsupported scheme (use duckdb:///path or postgresql://...)")
