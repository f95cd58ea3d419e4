"""How every step runs: its arguments (flags or RECSYS_* variables), its context, timing, record and exit code."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from recsys_core import progress
from recsys_core.columns import INPUT_TABLES
from recsys_core.config import DEFAULT_DATA_DIR, DEFAULT_WORK_DIR, Config, load_config
from recsys_core.errors import (
    EXIT_CANCELLED,
    EXIT_TRANSIENT,
    EXIT_USER_ERROR,
    Cancelled,
    ConfigError,
    RecsysError,
    TransientError,
)
from recsys_core.io import layout
from recsys_core.io.lake import Lake, check_ds
from recsys_core.redact import ScrubFilter, scrub
from recsys_core.trigger import check_ds_not_ahead

log = logging.getLogger("recsys")


# where a deployment keeps its warehouse: the Airflow connection recsys_warehouse, as Airflow reads it
# from the environment (a URI, or JSON with conn_type, host, login, password, port and schema)
WAREHOUSE_CONN_ENV = "AIRFLOW_CONN_RECSYS_WAREHOUSE"


def default_warehouse_url(work_dir: Path) -> str:
    return f"duckdb://{Path(work_dir).resolve() / 'warehouse.duckdb'}"


def connection_url(value: str) -> str:
    """The URL of an Airflow connection given in the environment (URI or JSON form)."""
    value = value.strip()
    if not value.startswith("{"):
        return value
    try:
        c = json.loads(value)
    except ValueError as exc:
        raise ConfigError(f"{WAREHOUSE_CONN_ENV} is neither a URI nor JSON: {exc}") from None
    auth = quote(c.get("login") or "", safe="")
    if c.get("password"):
        auth += ":" + quote(c["password"], safe="")
    port = f":{c['port']}" if c.get("port") else ""
    return f"{c.get('conn_type', 'postgresql')}://{auth}{'@' if auth else ''}{c.get('host', '')}{port}/{c.get('schema') or ''}"


def resolve_warehouse_url(flag: str | None, config: Config, work_dir: Path) -> str:
    """A flag wins, then RECSYS_WAREHOUSE_URL, then the connection recsys_warehouse in the
    environment, then the config's warehouse.url, then <work>/warehouse.duckdb."""
    conn = os.environ.get(WAREHOUSE_CONN_ENV)
    return (
        flag
        or os.environ.get("RECSYS_WAREHOUSE_URL")
        or (connection_url(conn) if conn else None)
        or config.warehouse.url
        or default_warehouse_url(work_dir)
    )


@dataclass(frozen=True)
class JobContext:
    ds: str
    data_dir: Path
    work_dir: Path
    config: Config
    warehouse_url: str
    run_id: str

    @property
    def work(self) -> layout.WorkDir:
        return layout.WorkDir(self.work_dir)

    @property
    def lake(self) -> Lake:
        return Lake(self.work.lake)

    @property
    def models_dir(self) -> Path:
        return self.work.models

    def input_path(self, table: str) -> Path:
        """The validated snapshot of an input table for this ds (written by validate_inputs)."""
        return self.lake.require(layout.input_dataset(table), self.ds)

    def read_input(self, table: str, columns: list[str] | None = None):
        return self.lake.read_table(layout.input_dataset(table), self.ds, columns)

    def input_rows(self, table: str) -> int:
        """Rows of the validated snapshot of an input table, from its Parquet footers."""
        return self.lake.count_rows(layout.input_dataset(table), self.ds)

    def spark_inputs(self, spark) -> dict:
        """The validated input snapshots of ds as Spark DataFrames (already cast to their contracts)."""
        return {t: spark.read.parquet(str(self.input_path(t))) for t in INPUT_TABLES}


def _arguments(argv: list[str] | None, description: str) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--ds", required=True, help="logical date of the run, YYYY-MM-DD")
    p.add_argument(
        "--data",
        default=env("RECSYS_DATA_DIR") or str(DEFAULT_DATA_DIR),
        help="folder with users/, items/, interactions/",
    )
    p.add_argument(
        "--work",
        default=env("RECSYS_WORK_DIR") or str(DEFAULT_WORK_DIR),
        help="lake and models root",
    )
    p.add_argument("--config", default=env("RECSYS_CONFIG") or None, help="TOML config file")
    p.add_argument(
        "--set", action="append", default=None, metavar="SECTION.KEY=VALUE", help="config override"
    )
    p.add_argument("--warehouse", default=env("RECSYS_WAREHOUSE_URL") or None, help="warehouse URL")
    p.add_argument("--run-id", default=env("RECSYS_RUN_ID") or "manual")
    a = p.parse_args(argv)
    if a.set is None:
        a.set = env_settings()
    return a


def settings_lines(text: str | None) -> list[str]:
    """Config overrides given as text: one section.key=value per line."""
    return [s for s in (text or "").splitlines() if s.strip()]


def env_settings() -> list[str]:
    """The config overrides of a job's environment: the deployment's (RECSYS_DEPLOYMENT_SETTINGS, set
    with the worker, e.g. by `recsys run --set`), then the trigger's (RECSYS_SETTINGS, checked by the
    DAG's operators against recsys_core/trigger.py), which win."""
    env = os.environ.get
    return settings_lines(env("RECSYS_DEPLOYMENT_SETTINGS")) + settings_lines(
        env("RECSYS_SETTINGS")
    )


def _context(a: argparse.Namespace) -> JobContext:
    work = Path(a.work).resolve()
    config = load_config(a.config, a.set)
    return JobContext(
        ds=check_ds_not_ahead(check_ds(a.ds)),
        data_dir=Path(a.data).resolve() if a.data else Path(),
        work_dir=work,
        config=config,
        warehouse_url=resolve_warehouse_url(a.warehouse, config, work),
        run_id=a.run_id,
    )


def parse_args(argv: list[str] | None, description: str) -> JobContext:
    return _context(_arguments(argv, description))


def _secret_urls(args: argparse.Namespace) -> list[str | None]:
    """Every warehouse URL the job may know, whose passwords no record or log line may show."""
    conn = os.environ.get(WAREHOUSE_CONN_ENV)
    try:
        from_conn = connection_url(conn) if conn else None
    except ConfigError:
        from_conn = None
    return [args.warehouse, os.environ.get("RECSYS_WAREHOUSE_URL"), from_conn]


def run_job(name: str, body: Callable[[JobContext], dict], argv: list[str] | None = None) -> int:
    """Run one step: time it, record {seconds, rows...} under the lake's _steps, map errors to exit
    codes. No password of the warehouse URL reaches the record, the log or a traceback."""
    started = time.time()
    args = _arguments(argv, f"recsys step {name}")
    secrets = _secret_urls(args)
    scrubber = ScrubFilter(secrets)
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.addFilter(scrubber)
    record: dict = {"step": name, "ds": args.ds, "run_id": args.run_id}
    code = 0
    try:
        ctx = _context(args)
        progress.begin(ctx.work.step_progress(ctx.ds, name), name)
        secrets.append(ctx.warehouse_url)  # the config's warehouse.url may hold one too
        scrubber.urls = [u for u in secrets if u]
        log.info("%s: ds=%s data=%s work=%s", name, ctx.ds, ctx.data_dir, ctx.work_dir)
        record.update(body(ctx) or {})
        record["status"] = "success"
    except Cancelled:  # SIGTERM: the cleanups on the way out have run; record it and stop
        record.update(status="cancelled", error="Cancelled: the step was stopped (SIGTERM)")
        log.error("%s cancelled: stopped by SIGTERM, nothing half written is left", name)
        code = EXIT_CANCELLED
    except TransientError as exc:  # a retry can fix it: the task retries with backoff
        record.update(status="failed", error=scrub(f"{type(exc).__name__}: {exc}", secrets))
        log.error("%s failed, a retry may pass: %s", name, record["error"])
        code = EXIT_TRANSIENT
    except RecsysError as exc:
        record.update(status="failed", error=scrub(f"{type(exc).__name__}: {exc}", secrets))
        log.error("%s failed: %s", name, record["error"])
        code = EXIT_USER_ERROR
    except Exception as exc:  # infrastructure trouble: let the scheduler retry
        record.update(status="failed", error=scrub(f"{type(exc).__name__}: {exc}", secrets))
        print(scrub(traceback.format_exc(), secrets), file=sys.stderr, end="")
        code = 1
    except BaseException:  # KeyboardInterrupt: it leaves before the record, and ends the progress
        progress.end()
        raise
    finally:
        for handler in handlers:
            handler.removeFilter(scrubber)
    record = json.loads(scrub(json.dumps(record), secrets))  # whatever the body put in it
    record["seconds"] = round(time.time() - started, 2)
    record["started_at"] = _utc(started)
    record["ended_at"] = _utc(time.time())
    try:  # even a bad config is recorded where `recsys run` looks, as long as ds is a date
        work = layout.WorkDir(Path(args.work).resolve())
        Lake(work.lake).write_json(record, layout.STEP_RECORDS, args.ds, f"{name}.json")
    except RecsysError:
        pass
    progress.end()  # after the record: a watcher sees the step running until it sees how it ended
    log.info(
        "%s %s in %.1fs: %s",
        name,
        record["status"],
        record["seconds"],
        {k: v for k, v in record.items() if k.startswith("rows")},
    )
    return code


def _utc(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds")


def _cancel(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one unwinding at a time: a second TERM waits
    raise Cancelled()


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # the jobs' and the CLI's
LOG_LEVEL_ENV = "RECSYS_LOG_LEVEL"  # the jobs' and the CLI's log level, e.g. DEBUG; INFO when unset
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def log_level() -> int:
    """The level RECSYS_LOG_LEVEL names (any case); INFO when unset or not a level's name."""
    name = os.environ.get(LOG_LEVEL_ENV, "").strip().upper()
    return logging.getLevelName(name) if name in LOG_LEVELS else logging.INFO


def main_for(name: str, body: Callable[[JobContext], dict]) -> None:
    """The entry point of `python -m jobs.<name>`: log to stderr, run the step, exit with its code.
    SIGTERM raises Cancelled in the step, so its staging folders, spill files and temporary model
    folders are removed on the way out instead of being left behind by a killed process."""
    logging.basicConfig(level=log_level(), format=LOG_FORMAT)
    signal.signal(signal.SIGTERM, _cancel)
    sys.exit(run_job(name, body))
