"""PostgreSQL warehouse: bulk COPY into per-run staging tables, one transaction per switch."""

from __future__ import annotations

import io
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recsys_core.errors import ConfigError, TransientError
from recsys_core.publish.tables import Table
from recsys_core.publish.warehouse import Warehouse
from recsys_core.redact import redacted

PUBLISH_LOCK_KEY = 7_310_555_001  # pg_advisory_lock key shared by every publisher of this schema
# a server that does not answer within this many seconds counts as refusing (then retried)
CONNECT_TIMEOUT = 10
# what the server says when it refuses a connection for good (libpq reports no sqlstate for these):
# invalid authorization (sqlstate class 28) or no such database (3D000); waiting cannot fix them
REFUSED_ACCOUNT = (
    "password authentication failed",
    'role "',  # role "x" does not exist
    'database "',  # database "x" does not exist
    "no pg_hba.conf entry",
    "permission denied for database",
)
# sqlstate classes of passing faults: connection exceptions (08), operator intervention (57: shutdown)
PASSING_CLASSES = ("08", "57")
COPY_BATCH_ROWS = 500_000  # rows per CSV buffer written to COPY: bounds that buffer's memory


def _pg_array(values: pa.Array) -> pa.Array:
    """list<string> -> PostgreSQL array literals such as {"Drama","Sci-Fi"} (quotes and backslashes escaped)."""
    flat = pc.replace_substring(pc.replace_substring(values.flatten(), "\\", "\\\\"), '"', '\\"')
    # a slice of a list array (a batch of a larger one) has offsets into the whole array's values,
    # while flatten() gives the slice's own values: offsets from 0
    offsets = pc.subtract(values.offsets, values.offsets[0])
    quoted = pa.ListArray.from_arrays(offsets, pc.binary_join_element_wise('"', flat, '"', ""))
    return pc.binary_join_element_wise("{", pc.binary_join(quoted, ","), "}", "")


class PostgresWarehouse(Warehouse):
    dialect = "postgres"

    def __init__(self, url: str):
        self.url = url

    def connect(self, read_only: bool = False):
        import psycopg

        try:
            con = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.OperationalError as exc:
            where = f"warehouse {redacted(self.url)}: {str(exc).strip()}"
            if "FATAL" in str(exc) and any(m in str(exc) for m in REFUSED_ACCOUNT):
                raise ConfigError(
                    f"the warehouse refused the account or database: {where}"
                ) from exc
            raise TransientError(f"cannot connect to {where}") from exc
        if read_only:
            con.execute("SET default_transaction_read_only = on")
        return con

    @contextmanager
    def transient_faults(self):
        """A connection lost or a server shutting down mid-publish (OperationalError, sqlstate class
        08 or 57, or none when the socket just closed) is a passing fault."""
        import psycopg

        try:
            yield
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            if exc.sqlstate and not exc.sqlstate.startswith(PASSING_CLASSES):
                raise
            raise TransientError(f"warehouse connection lost: {str(exc).strip()}") from exc

    def ensure_key(self, con, table: Table) -> None:
        """A primary key on the table's natural key (ds first), added once, also to a table an older
        version created without one. Publish deletes a ds and inserts it in one transaction, so the
        key never sees the old and the new rows at once."""
        has_key = self.sql(
            con,
            "SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(?) AND contype = 'p'",
            [table.name],
        )
        if not has_key:
            self.sql(con, f"ALTER TABLE {table.name} ADD PRIMARY KEY ({', '.join(table.key)})")

    def _placeholders(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def sql(self, con, statement: str, params: list | tuple = ()) -> list[tuple]:
        cur = con.execute(self._placeholders(statement), list(params) or None)
        return cur.fetchall() if cur.description else []

    def lock_publishers(self, con) -> None:
        con.execute("SELECT pg_advisory_lock(%s)", [PUBLISH_LOCK_KEY])

    def bulk_load(self, con, table: str, rows: pa.Table | pa.RecordBatchReader) -> None:
        """COPY the rows batch by batch (an Arrow table, or a stream read once): one CSV buffer of at
        most COPY_BATCH_ROWS rows in memory at a time."""
        batches = (
            rows.to_batches(max_chunksize=COPY_BATCH_ROWS) if isinstance(rows, pa.Table) else rows
        )
        with (
            con.cursor() as cur,
            cur.copy(
                f"COPY {table} ({', '.join(rows.schema.names)}) FROM STDIN WITH (FORMAT csv)"
            ) as copy,
        ):
            for batch in batches:  # a stream's batches hold at most SCAN_BATCH_ROWS rows
                if batch.num_rows:
                    copy.write(_csv(batch))


def _csv(batch: pa.RecordBatch) -> bytes:
    """A batch as CSV rows for COPY, list columns as PostgreSQL array literals."""
    columns = [
        _pg_array(column) if pa.types.is_list(column.type) else column for column in batch.columns
    ]
    buf = io.BytesIO()
    pacsv.write_csv(
        pa.RecordBatch.from_arrays(columns, names=batch.schema.names),
        buf,
        pacsv.WriteOptions(include_header=False),
    )
    return buf.getvalue()
