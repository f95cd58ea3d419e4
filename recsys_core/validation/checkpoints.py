"""Great Expectations validation of the input and feature tables, with errors naming table, column and rule."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from recsys_core import columns as C
from recsys_core.errors import DataValidationError
from recsys_core.io.contracts import contract, suite_dict
from recsys_core.io.layout import DOCS_INDEX
from recsys_core.validation.merge import merge, outcome

log = logging.getLogger(__name__)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
EXISTS = "expect_column_to_exist"
# what a failure message and a report show, so they stay readable whatever the table
BRIEF_VALUES = 10  # a value set longer than this (every user id) is shown by its size
EXAMPLE_VALUES = 5  # unexpected values quoted in a failure message
EXCEPTION_CHARS = 200  # of the first line of a rule's exception


def _expectations(suite_name: str, df: pd.DataFrame, feature_columns: list[str]) -> list[dict]:
    raw = suite_dict(suite_name)
    expectations = list(raw["expectations"])
    optional = set()
    try:
        optional = {c.name for c in contract(suite_name).columns if not c.required}
    except FileNotFoundError:
        pass
    # an optional column that is absent has nothing to check; a required one must fail loudly
    expectations = [
        e
        for e in expectations
        if not (e["kwargs"].get("column") in optional and e["kwargs"]["column"] not in df)
    ]
    for column in feature_columns:
        for template in raw.get("meta", {}).get("per_feature_column", []):
            expectations.append(
                {"type": template["type"], "kwargs": {"column": column, **template["kwargs"]}}
            )
    return expectations


def _brief(kwargs: dict) -> dict:
    """kwargs for messages and reports: long value sets (every user id) shown by their size."""
    return {
        k: (f"<{len(v)} values>" if isinstance(v, (list, set)) and len(v) > BRIEF_VALUES else v)
        for k, v in kwargs.items()
    }


def _describe(outcome: dict) -> str:
    kwargs = _brief(outcome["kwargs"])
    column = kwargs.get("column") or kwargs.get("column_list") or "(table)"
    detail = outcome["result"]
    parts = []
    if detail.get("unexpected_count"):
        share = detail.get("unexpected_percent")
        parts.append(
            f"{detail['unexpected_count']} row(s) unexpected"
            + (f" ({share:.2f}%)" if share else "")
        )
        sample = detail.get("partial_unexpected_list") or []
        if sample:
            parts.append(f"e.g. {sample[:EXAMPLE_VALUES]!r}")
    if detail.get("observed_value") is not None:
        parts.append(f"observed {detail['observed_value']!r}")
    if outcome["exception"]:
        parts.append(outcome["exception"].splitlines()[0][:EXCEPTION_CHARS])
    args = {k: v for k, v in kwargs.items() if k not in ("column", "column_list")}
    return f"column {column}: {outcome['type']}{args if args else ''} failed" + (
        f" ({'; '.join(parts)})" if parts else ""
    )


def end_of_day_epoch(ds: str) -> int:
    """The last second (Unix time, UTC) of the run date: no interaction may be later."""
    start = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC)
    return int((start + dt.timedelta(days=1)).timestamp()) - 1


def unknown_values(column: pd.Series, known: pd.Index) -> list:
    """The distinct non-null values of column that known does not hold."""
    values = pd.unique(column.dropna())
    return values[~pd.Index(values).isin(known)].tolist()


def interaction_parameters(
    user_ids, item_ids, ds: str, max_orphan_share: float
) -> Callable[[pd.DataFrame], dict]:
    """The $PARAMETERs of the interactions suite for a chunk of interactions, given the known users' and
    items' ids: the referential rules get the chunk's ids that are not known (usually none), never every
    known id (GX serialises a value set once per metric: a large one costs more than the check)."""
    users, items = pd.Index(np.asarray(user_ids)), pd.Index(np.asarray(item_ids))
    fixed = {"ds_end_epoch": end_of_day_epoch(ds), "min_known_share": 1.0 - max_orphan_share}

    def of(chunk: pd.DataFrame) -> dict:
        unknown = {
            f"unknown_{column}s": unknown_values(chunk[column], known) if column in chunk else []
            for column, known in ((C.USER_ID, users), (C.ITEM_ID, items))
        }
        return {**fixed, **unknown}

    return of


def _checkpoint(table: str, suite_name: str, expectations: list[dict], docs_root: Path):
    """A file-backed GX checkpoint of the suite on a dataframe asset, updating the Data Docs under docs_root."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = gx.get_context(mode="file", project_root_dir=str(docs_root))
    # GX annotates the setter as ProgressBarsConfig, but its own config schema loads (and its validator
    # reads) progress_bars as a plain mapping, which is what great_expectations.yml gets
    context.variables.progress_bars = {"globally": False}  # type: ignore[assignment]
    source = context.data_sources.add_or_update_pandas("recsys")
    asset = (
        source.add_dataframe_asset(table)
        if table not in source.get_asset_names()
        else source.get_asset(table)
    )
    batch = (
        asset.add_batch_definition_whole_dataframe(f"{table}-whole")
        if not asset.batch_definitions
        else asset.batch_definitions[0]
    )
    # built in one go: add_expectation_configuration() merges e.g. every expect_column_to_exist into one
    suite = gx.ExpectationSuite(
        name=suite_name,
        expectations=[
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"]) for e in expectations
        ],
    )
    definition = gx.ValidationDefinition(name=table, data=batch, suite=suite)
    checkpoint = gx.Checkpoint(
        name=table,
        validation_definitions=[definition],
        actions=[UpdateDataDocsAction(name="data_docs")],
        result_format="SUMMARY",
    )
    # replaced, not add_or_update()d: GX's update compares every stored expectation with every new
    # one (quadratic in the suite's size), and a rerun of the same ds must store only its own rules
    for store, name in (
        (context.checkpoints, table),
        (context.validation_definitions, table),
        (context.suites, suite_name),
    ):
        if _stored(store, name):
            store.delete(name)
    context.suites.add(suite)
    context.validation_definitions.add(definition)
    return context.checkpoints.add(checkpoint)


def _stored(store, name: str) -> bool:
    try:
        store.get(name)
    except Exception:  # GX raises a store-specific not-found error
        return False
    return True


def validate_chunks(
    table: str,
    chunks: Iterable[pd.DataFrame],
    docs_root: Path,
    suite_name: str | None = None,
    feature_columns: Sequence[str] = (),
    parameters: dict | Callable[[pd.DataFrame], dict] | None = None,
    key: str | None = None,
) -> dict:
    """Run the suite `suite_name` (default: the table's) on the table given as chunks (key_chunks.py: every
    `key`'s rows in one chunk), one GX checkpoint run per chunk, each updating the Data Docs under docs_root;
    merge the runs into the verdict on the whole table (validation_merge.py) and raise DataValidationError
    naming every failed column and expectation."""
    from great_expectations.core.run_identifier import RunIdentifier

    suite_name = suite_name or table
    per_chunk: list[list[dict]] = []  # each chunk's outcomes, merged below
    checkpoint, rows = None, 0
    for df in chunks:
        if checkpoint is None:
            checkpoint = _checkpoint(
                table, suite_name, _expectations(suite_name, df, list(feature_columns)), docs_root
            )
        run_name = f"{table} chunk {len(per_chunk) + 1}"
        values = parameters(df) if callable(parameters) else parameters or {}
        run = checkpoint.run(
            batch_parameters={"dataframe": df},
            expectation_parameters=values,
            run_id=RunIdentifier(run_name=run_name),
        )
        per_chunk.append([outcome(r) for r in next(iter(run.run_results.values())).results])
        rows += len(df)
        del df, run
    results = merge(per_chunk, key)
    report = Path(docs_root) / DOCS_INDEX
    failed = [r for r in results if not r["success"]]
    (Path(docs_root) / f"{table}.json").write_text(
        json.dumps(
            {
                "table": table,
                "suite": suite_name,
                "rows": rows,
                "chunks": len(per_chunk),
                "success": not failed,
                "results": [{**r, "kwargs": _brief(r["kwargs"])} for r in results],
            },
            indent=2,
            default=str,
        )
    )
    # a missing column fails every rule on it; report only the cause
    missing = {r["kwargs"]["column"] for r in failed if r["type"] == EXISTS}
    failures = sorted(
        _describe(r)
        for r in failed
        if r["type"] == EXISTS or r["kwargs"].get("column") not in missing
    )
    summary = {
        "table": table,
        "rows": rows,
        "chunks": len(per_chunk),
        "expectations": len(results),
        "failed": len(failures),
    }
    log.info("validated %s: %s (Data Docs: %s)", table, summary, report)
    if failures:
        raise DataValidationError(table, failures, str(report))
    return summary


def validate_frame(
    table: str,
    df: pd.DataFrame,
    docs_root: Path,
    suite_name: str | None = None,
    feature_columns: Sequence[str] = (),
    parameters: dict | Callable[[pd.DataFrame], dict] | None = None,
) -> dict:
    """validate_chunks on one in-memory table."""
    return validate_chunks(table, [df], docs_root, suite_name, feature_columns, parameters)
