"""Write-audit-publish, shared by every backend: stage per run, audit the load, switch ds in one transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from recsys_core.config import WarehouseConfig
from recsys_core.errors import AuditError, ConfigError, TransientError
from recsys_core.faults import fault_point
from recsys_core.publish.tables import (
    LATEST_VIEW_SQL,
    PUBLISH_LOG,
    PUBLISHED,
    RUN_REPORT,
    Table,
    comment_sql,
    create_sql,
)
from recsys_core.redact import redacted

log = logging.getLogger(__name__)
CHECKSUM_EXCLUDES = ("ds", "run_id")  # a rerun of the same inputs must checksum the same
# hex characters of the (ds, run_id) hash in staging table names: distinct runs get distinct names,
# and the names stay short identifiers
STAGING_TOKEN_CHARS = 12


# what publish takes for a table: an Arrow table, or an Arrow dataset it scans in batches (the lake's
# Parquet files of a night's recommendations), so no table needs to fit in memory whole
Rows: TypeAlias = pa.Table | pads.Dataset
SCAN_BATCH_ROWS = 500_000  # rows per batch of a scan (checksum, bulk load, staging sums)
# one batch and one file read ahead of the one in use (pyarrow's defaults, 16 and 4, keep up to 16
# batches of 500,000 rows in flight: most of the step's memory at 20,000,000 rows)
READAHEAD = {"batch_readahead": 1, "fragment_readahead": 1}
MASK64 = (1 << 64) - 1


def as_dataset(rows: Rows) -> pads.Dataset:
    return rows if isinstance(rows, pads.Dataset) else pads.dataset(rows)


def checksum(rows: Rows, columns: list[str] | None = None) -> str:
    """Order-insensitive digest of a table's content (of `columns`, when given): the wrapping sum of a
    64-bit hash per row, added up batch by batch."""
    source = as_dataset(rows)
    names = [c for c in (columns or source.schema.names) if c not in CHECKSUM_EXCLUDES]
    lists = {n for n in names if pa.types.is_list(source.schema.field(n).type)}
    count, total = 0, 0
    for batch in source.to_batches(columns=names, batch_size=SCAN_BATCH_ROWS, **READAHEAD):
        df = batch.to_pandas()
        for c in lists:  # hash lists by their text so array columns hash like scalars
            df[c] = df[c].map(lambda v: "\x1f".join(map(str, v)) if v is not None else None)
        hashes = pd.util.hash_pandas_object(df, index=False).to_numpy(dtype=np.uint64)
        total = (total + int(hashes.sum(dtype=np.uint64))) & MASK64
        count += len(df)
    return f"{count}-{total:016x}"


@dataclass(frozen=True)
class PublishResult:
    status: str  # "published" or "noop" (this run had already published these rows)
    rows: dict[str, int]
    checksum: str


def retry_waits(retries: int) -> tuple[float, ...]:
    """Seconds between the attempts of a publish (or a run report) that hit a passing fault of the
    database: 1, 2, 4, ...; after the last, the task fails with TransientError and Airflow retries."""
    return tuple(2.0**i for i in range(retries))


class Warehouse:
    """Backend-neutral publish; subclasses provide connections, bulk load and a publisher lock."""

    dialect = ""
    url = ""
    retry_waits: tuple[float, ...] = retry_waits(WarehouseConfig.retries)

    # --- backend hooks -------------------------------------------------------------------
    def connect(self, read_only: bool = False):
        raise NotImplementedError

    @contextmanager
    def transient_faults(self):
        """Raises TransientError for what the engine's driver raises on a passing fault (a dropped
        connection, a server shutting down); connect() raises it itself."""
        yield

    def bulk_load(self, con, table: str, rows: pa.Table | pa.RecordBatchReader) -> None:
        raise NotImplementedError

    def lock_publishers(self, con) -> None:
        """Serialise publishers of this warehouse (no-op where the engine already does)."""

    def sql(self, con, statement: str, params: list | tuple = ()) -> list[tuple]:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------
    def ensure_schema(self, con) -> None:
        for table in (*PUBLISHED.values(), PUBLISH_LOG, RUN_REPORT):
            self.sql(con, create_sql(table, self.dialect))
            for statement in comment_sql(table):
                self.sql(con, statement)
            self.ensure_key(con, table)
        self.sql(con, LATEST_VIEW_SQL)

    def ensure_key(self, con, table: Table) -> None:
        """Give a live table its natural key as a primary key, where the engine keeps one cheaply."""

    def query(self, statement: str, params: list | tuple = ()) -> pd.DataFrame:
        con = self.connect(read_only=True)
        try:
            cur = con.execute(self._placeholders(statement), list(params) or None)
            names = [d[0] for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=names)
        finally:
            con.close()

    def _placeholders(self, statement: str) -> str:
        return statement

    def published_checksum(self, con, ds: dt.date, run_id: str) -> str | None:
        rows = self.sql(
            con,
            "SELECT checksum FROM publish_log WHERE ds = ? AND run_id = ? AND table_name = 'recommendations'",
            [ds, run_id],
        )
        return rows[0][0] if rows else None

    def _retrying(self, what: str, attempt):
        """attempt() again after each wait of retry_waits while it raises TransientError; the last
        one's error is raised. Safe for publish and record_run: each attempt starts over, staging is
        per run, and a publish that already switched is a no-op."""
        for n, wait in enumerate((*self.retry_waits, None), start=1):
            try:
                with self.transient_faults():
                    return attempt()
            except TransientError as exc:
                if wait is None:
                    raise
                log.warning(
                    "%s, attempt %d of %d: %s; again in %.0f s",
                    what,
                    n,
                    len(self.retry_waits) + 1,
                    exc,
                    wait,
                )
                time.sleep(wait)
        raise AssertionError("unreachable")

    def publish(
        self, ds: str, run_id: str, tables: dict[str, Rows], model_version: str | None
    ) -> PublishResult:
        """Stage each table under a run-scoped name, audit what landed, then replace ds in one transaction.

        A publish this run already made (same ds, run_id and checksum) is a no-op, so a retry after a
        crash between the switch and the clean-up publishes nothing twice; a passing fault of the
        database (TransientError) is retried from the start after each of retry_waits.
        """
        return self._retrying(
            f"publish of ds={ds}", lambda: self._publish_once(ds, run_id, tables, model_version)
        )

    def _publish_once(
        self, ds: str, run_id: str, tables: dict[str, Rows], model_version: str | None
    ) -> PublishResult:
        day = dt.date.fromisoformat(ds)
        sources = {name: as_dataset(rows) for name, rows in tables.items()}
        counts = {name: source.count_rows() for name, source in sources.items()}
        sums = {name: checksum(sources[name], PUBLISHED[name].names) for name in sources}
        token = hashlib.sha1(f"{ds}|{run_id}".encode()).hexdigest()[:STAGING_TOKEN_CHARS]
        staged = {name: f"stg_{name}_{token}" for name in tables}
        con = self.connect()
        try:
            self.lock_publishers(con)
            self.ensure_schema(con)
            done = self.published_checksum(con, day, run_id)
            if done is not None and done == sums.get("recommendations"):
                log.info(
                    "ds=%s run %s already published (checksum %s): nothing to do", ds, run_id, done
                )
                self._drop(con, staged)
                return PublishResult("noop", counts, done)
            for name, source in sources.items():
                self.sql(con, f"DROP TABLE IF EXISTS {staged[name]}")
                self.sql(con, create_sql(PUBLISHED[name], self.dialect, staged[name]))
                self.bulk_load(con, staged[name], _with_ds(source, day, PUBLISHED[name].names))
                self._audit_staged(con, name, staged[name], source)
            log.info("staged and audited %s", counts)
            fault_point("publish_after_stage")
            self._switch(con, day, run_id, counts, staged, sums, model_version)
            fault_point("publish_after_switch")
            self._drop(con, staged)
        finally:
            con.close()
        return PublishResult("published", counts, sums["recommendations"])

    def drop_before(self, oldest: str) -> dict[str, int]:
        """Delete the ds partitions older than `oldest` of the published tables, in one transaction
        under the publishers' lock (retention.warehouse_days); publish_log and run_report stay.
        Returns the rows deleted per table."""
        return self._retrying(f"retention before ds={oldest}", lambda: self._drop_before(oldest))

    @contextmanager
    def _locked_transaction(self):
        """A connection holding the publishers' lock, the schema ensured, inside one transaction
        committed when the block ends (closed either way)."""
        con = self.connect()
        try:
            self.lock_publishers(con)
            self.ensure_schema(con)
            self.sql(con, "BEGIN")
            yield con
            self.sql(con, "COMMIT")
        finally:
            con.close()

    def _drop_before(self, oldest: str) -> dict[str, int]:
        day = dt.date.fromisoformat(oldest)
        gone = {}
        with self._locked_transaction() as con:
            for name in PUBLISHED:
                gone[name] = int(
                    self.sql(con, f"SELECT count(*) FROM {name} WHERE ds < ?", [day])[0][0]
                )
                self.sql(con, f"DELETE FROM {name} WHERE ds < ?", [day])
        return gone

    def record_run(self, ds: str, run_id: str, steps: list[dict]) -> None:
        """Replace the run report rows of (ds, run_id) in one transaction (retried as publish is)."""
        self._retrying(f"run report of ds={ds}", lambda: self._record_run_once(ds, run_id, steps))

    def _record_run_once(self, ds: str, run_id: str, steps: list[dict]) -> None:
        day = dt.date.fromisoformat(ds)
        with self._locked_transaction() as con:
            self.sql(con, "DELETE FROM run_report WHERE ds = ? AND run_id = ?", [day, run_id])
            for step in steps:
                self.sql(
                    con,
                    f"INSERT INTO run_report ({', '.join(RUN_REPORT.names)}) VALUES "
                    f"({', '.join('?' * len(RUN_REPORT.names))})",
                    [day, run_id, *step_row(step)],
                )

    def _switch(self, con, day, run_id, counts, staged, sums, model_version) -> None:
        self.sql(con, "BEGIN")
        try:
            for name in counts:
                cols = ", ".join(PUBLISHED[name].names)
                self.sql(con, f"DELETE FROM {name} WHERE ds = ?", [day])
                self.sql(con, f"INSERT INTO {name} ({cols}) SELECT {cols} FROM {staged[name]}")
                self.sql(
                    con,
                    "DELETE FROM publish_log WHERE ds = ? AND run_id = ? AND table_name = ?",
                    [day, run_id, name],
                )
                self.sql(
                    con,
                    "INSERT INTO publish_log (ds, run_id, table_name, rows, checksum, model_version, published_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        day,
                        run_id,
                        name,
                        counts[name],
                        sums[name],
                        model_version,
                        dt.datetime.now(dt.UTC).replace(tzinfo=None),
                    ],
                )
            self.sql(con, "COMMIT")
        except Exception:
            self.sql(con, "ROLLBACK")
            raise

    def _drop(self, con, staged: dict[str, str]) -> None:
        for name in staged.values():
            self.sql(con, f"DROP TABLE IF EXISTS {name}")

    def _audit_staged(self, con, name: str, staged: str, source: pads.Dataset) -> None:
        """What landed in staging must be what was written, and recommendations must be well formed."""
        ints = [c.name for c in PUBLISHED[name].columns if c.type in ("bigint", "int")]
        got = self.sql(
            con, f"SELECT count(*), {', '.join(f'sum({c})' for c in ints)} FROM {staged}"
        )[0]
        want = [0] * (len(ints) + 1)
        for batch in source.to_batches(columns=ints, batch_size=SCAN_BATCH_ROWS, **READAHEAD):
            want[0] += batch.num_rows
            for i, c in enumerate(ints, start=1):
                want[i] += int(pc.sum(batch.column(c)).as_py() or 0)
        got = tuple(int(v or 0) for v in got)
        if got != tuple(want):
            raise AuditError(
                f"staging table {staged} holds {got} (rows, sums of {ints}), expected {tuple(want)}"
            )
        if name != "recommendations":
            return
        bad = self.sql(
            con,
            f"""SELECT
                  (SELECT count(*) FROM {staged} WHERE NOT (score BETWEEN -1e308 AND 1e308)
                       OR NOT (predicted_rating BETWEEN -1e308 AND 1e308)),
                  (SELECT count(*) FROM (SELECT user_id FROM {staged} GROUP BY user_id
                       HAVING min(rank) <> 1 OR max(rank) <> count(*) OR count(DISTINCT rank) <> count(*)) u),
                  (SELECT count(DISTINCT model_version) FROM {staged})""",
        )[0]
        problems = []
        if bad[0]:
            problems.append(f"{bad[0]} row(s) with a non-finite score or predicted rating")
        if bad[1]:
            problems.append(f"{bad[1]} user(s) whose ranks are not 1..n")
        if bad[2] > 1:
            problems.append(f"{bad[2]} model versions in one publish")
        if problems:
            raise AuditError(
                f"staged recommendations failed the audit, nothing was published: {'; '.join(problems)}"
            )


def _with_ds(source: pads.Dataset, day: dt.date, names: list[str]) -> pa.RecordBatchReader:
    """The source's batches as the published table's columns, ds set to `day`: a stream, read once by
    bulk_load."""
    schema = pa.schema(
        [pa.field("ds", pa.date32()) if n == "ds" else source.schema.field(n) for n in names]
    )
    days = (day - dt.date(1970, 1, 1)).days

    def batches():
        for batch in source.to_batches(
            columns=[n for n in names if n != "ds"], batch_size=SCAN_BATCH_ROWS, **READAHEAD
        ):
            ds = pa.array(np.full(batch.num_rows, days, dtype=np.int32)).cast(pa.date32())
            yield pa.RecordBatch.from_arrays(
                [ds if n == "ds" else batch.column(n) for n in names], schema=schema
            )

    return pa.RecordBatchReader.from_batches(schema, batches())


def step_row(step: dict) -> list:
    """A step record of recsys_core/step_runner.py as the run_report columns after (ds, run_id)."""
    import json

    known = {
        "step",
        "status",
        "started_at",
        "ended_at",
        "seconds",
        "rows_in",
        "rows_out",
        "ds",
        "run_id",
    }
    details = {k: v for k, v in step.items() if k not in known}
    return [
        step["step"],
        step["status"],
        step.get("started_at"),
        step.get("ended_at"),
        step.get("seconds"),
        json.dumps(step.get("rows_in") or {}),
        json.dumps(step.get("rows_out") or {}),
        json.dumps(details, default=str),
    ]


def open_warehouse(url: str, retries: int = WarehouseConfig.retries) -> Warehouse:
    """duckdb:///path/file.duckdb or postgresql://user@host:port/db; a publish that hits a passing
    fault of the database is tried `retries` more times (warehouse.retries)."""
    if url.startswith("duckdb://"):
        from recsys_core.publish.duckdb_store import DuckDBWarehouse

        wh: Warehouse = DuckDBWarehouse(url)
    elif url.startswith(("postgresql://", "postgres://")):
        from recsys_core.publish.postgres_store import PostgresWarehouse

        wh = PostgresWarehouse(url)
    else:
        raise ConfigError(
            f"warehouse URL {redacted(url)!r}: unsupported scheme (use duckdb:///path or postgresql://...)"
        )
    wh.retry_waits = retry_waits(retries)
    return wh
