"""PostgreSQL warehouse: bulk COPY into per-run staging tables, one transaction per switch."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from recsys_core.errors import RecsysError
from recsys_core.publish.warehouse import Warehouse
from recsys_core.redact import redacted

PUBLISH_LOCK_KEY = 7_310_555_001  # pg_advisory_lock key shared by every publisher of this schema
COPY_BATCH_ROWS = 500_000  # rows per CSV buffer written to COPY: bounds that buffer's memory


def _pg_array(values: pa.Array) -> pa.Array:
    """list<string> -> PostgreSQL array literals such as {"Drama","Sci-Fi"} (quotes and backslashes escaped)."""
    flat = pc.replace_substring(pc.replace_substring(values.flatten(), "\\", "\\\\"), '"', '\\"')
    quoted = pa.ListArray.from_arrays(
        values.offsets, pc.binary_join_element_wise('"', flat, '"', "")
    )
    return pc.binary_join_element_wise("{", pc.binary_join(quoted, ","), "}", "")


class PostgresWarehouse(Warehouse):
    dialect = "postgres"

    def __init__(self, url: str):
        self.url = url

    def connect(self, read_only: bool = False):
        import psycopg

        try:
            con = psycopg.connect(self.url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise RecsysError(
                f"cannot connect to warehouse {redacted(self.url)}: {str(exc).strip()}"
            ) from exc
        if read_only:
            con.execute("SET default_transaction_read_only = on")
        return con

    def _placeholders(self, statement: str) -> str:
        return statement.replace("?", "%s")

    def sql(self, con, statement: str, params: list | tuple = ()) -> list[tuple]:
        cur = con.execute(self._placeholders(statement), list(params) or None)
        return cur.fetchall() if cur.description else []

    def lock_publishers(self, con) -> None:
        con.execute("SELECT pg_advisory_lock(%s)", [PUBLISH_LOCK_KEY])

    def bulk_load(self, con, table: str, rows: pa.Table) -> None:
        for i, field in enumerate(rows.schema):
            if pa.types.is_list(field.type):
                rows = rows.set_column(i, field.name, _pg_array(rows.column(i).combine_chunks()))
        with (
            con.cursor() as cur,
            cur.copy(
                f"COPY {table} ({', '.join(rows.column_names)}) FROM STDIN WITH (FORMAT csv)"
            ) as copy,
        ):
            for batch in rows.to_batches(max_chunksize=COPY_BATCH_ROWS):
                buf = io.BytesIO()
                pacsv.write_csv(batch, buf, pacsv.WriteOptions(include_header=False))
                copy.write(buf.getvalue())
