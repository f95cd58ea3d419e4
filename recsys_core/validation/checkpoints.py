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
from recsys_core.validation import contract_rules
from recsys_core.validation.merge import merge, outcome

log = logging.getLogger(__name__)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
EXISTS = "expect_column_to_exist"
ROW_COUNT = "expect_table_row_count_to_be_between"
# what a failure message and a report show, so they stay readable whatever the table
BRIEF_VALUES = 10  # a value set longer than this (every user id) is shown by its size
EXAMPLE_VALUES = 5  # unexpected values quoted in a failure message
EXCEPTION_CHARS = 200  # of the first line of a rule's exception


def _expectations(
    suite_name: str, df: pd.DataFrame, feature_columns: list[str], table: str | None = None
) -> list[dict]:
    raw = suite_dict(suite_name)
    expectations = list(raw["expectations"])
    if table in raw.get("meta", {}).get("may_be_empty", {}):
        # a table the suite's meta.may_be_empty names (and says why) may hold no rows
        expectations = [e for e in expectations if e["type"] != ROW_COUNT]
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


def _element_expectations(suite_name: str, df: pd.DataFrame) -> dict[str, list[dict]]:
    """The suite's per_element rules by list column (the column present in df): GX rules run on the
    column's elements, one row each (contract_rules.elements), e.g. no reason separator in a genre."""
    templates = suite_dict(suite_name).get("meta", {}).get("per_element", {})
    return {
        column: [{**t, "kwargs": {"column": column, **t["kwargs"]}} for t in rules]
        for column, rules in templates.items()
        if column in df
    }


def _contract_or_none(suite_name: str):
    try:
        return contract(suite_name)
    except FileNotFoundError:  # a feature suite: no contract, no contract rules
        return None


def _brief(kwargs: dict) -> dict:
    """kwargs for messages and reports: long value sets (every user id) shown by their size."""
    return {
        k: (f"<{len(v)} values>" if isinstance(v, (list, set)) and len(v) > BRIEF_VALUES else v)
        for k, v in kwargs.items()
    }


def _describe(outcome: dict, rows: int | None = None) -> str:
    """One failed rule as a line of the error: column, rule, counts, examples, and the suite's hint."""
    kwargs = _brief(outcome["kwargs"])
    column = kwargs.get("column") or kwargs.get("column_list") or "(table)"
    if outcome.get("elements"):
        column = f"{column} (each element)"
    detail = outcome["result"]
    parts = []
    if detail.get("unexpected_count"):
        share = detail.get("unexpected_percent")
        parts.append(
            f"{detail['unexpected_count']} {outcome.get('unit', 'row(s)')} unexpected"
            + (f" ({share:.2f}%)" if share else "")
        )
        # distinct examples (GX repeats a value once per row), compared by repr: lists are unhashable
        sample = list({repr(v): v for v in detail.get("partial_unexpected_list") or []}.values())
        if sample:
            parts.append(f"e.g. {sample[:EXAMPLE_VALUES]!r}")
    if detail.get("observed_value") is not None:
        observed = detail["observed_value"]
        observed = observed.item() if isinstance(observed, np.generic) else observed
        parts.append(f"observed {observed!r}" + (f" over {rows} row(s)" if rows else ""))
    if outcome["exception"]:
        parts.append(outcome["exception"].splitlines()[0][:EXCEPTION_CHARS])
    args = {k: v for k, v in kwargs.items() if k not in ("column", "column_list")}
    hint = (outcome.get("meta") or {}).get("hint")
    return (
        f"column {column}: {outcome['type']}{args if args else ''} failed"
        + (f" ({'; '.join(parts)})" if parts else "")
        + (f": {hint}" if hint else "")
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
    user_ids, item_ids, ds: str, max_orphan_share: float, min_top_rating: float = 0.0
) -> Callable[[pd.DataFrame], dict]:
    """The $PARAMETERs of the interactions suite for a chunk of interactions, given the known users' and
    items' ids: the referential rules get the chunk's ids that are not known (usually none), never every
    known id (GX serialises a value set once per metric: a large one costs more than the check).
    min_top_rating: the rating at least one interaction must reach (the model's positives; 0: any)."""
    users, items = pd.Index(np.asarray(user_ids)), pd.Index(np.asarray(item_ids))
    fixed = {
        "ds_end_epoch": end_of_day_epoch(ds),
        "min_known_share": 1.0 - max_orphan_share,
        "min_top_rating": float(min_top_rating),
    }

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
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"], meta=e.get("meta") or None)
            for e in expectations
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
    naming every failed column and expectation. An input table also gets the named checks of its
    contract (contract_rules.py: values cast to the contract's type, no null inside a list, genre names
    giving distinct feature columns) and its suite's per_element rules, run by GX on the elements of
    a list column."""
    from great_expectations.core.run_identifier import RunIdentifier

    suite_name = suite_name or table
    spec = _contract_or_none(suite_name)
    names = contract_rules.feature_names(table) if spec is not None else None
    per_chunk: list[list[dict]] = []  # each chunk's outcomes, merged below
    checkpoint, rows = None, 0
    per_element: dict = {}  # list column -> the GX checkpoint of its elements
    for df in chunks:
        if checkpoint is None:
            checkpoint = _checkpoint(
                table,
                suite_name,
                _expectations(suite_name, df, list(feature_columns), table),
                docs_root,
            )
            per_element = {
                column: _checkpoint(f"{table}.{column}", f"{suite_name}.{column}", rules, docs_root)
                for column, rules in _element_expectations(suite_name, df).items()
            }
        run_name = f"{table} chunk {len(per_chunk) + 1}"
        values = parameters(df) if callable(parameters) else parameters or {}
        run = checkpoint.run(
            batch_parameters={"dataframe": df},
            expectation_parameters=values,
            run_id=RunIdentifier(run_name=run_name),
        )
        outcomes = [outcome(r) for r in next(iter(run.run_results.values())).results]
        if spec is not None:  # what GX cannot see in a pandas frame, from the contract
            outcomes += contract_rules.cast_outcomes(spec, df)
            outcomes += contract_rules.list_null_outcomes(spec, df)
        for column, element_checkpoint in per_element.items():
            run = element_checkpoint.run(
                batch_parameters={"dataframe": contract_rules.elements(df[column])},
                run_id=RunIdentifier(run_name=f"{run_name} {column} elements"),
            )
            outcomes += [
                {**outcome(r), "elements": True, "unit": "element(s)"}
                for r in next(iter(run.run_results.values())).results
            ]
        if names is not None:
            names.add(df)
        per_chunk.append(outcomes)
        rows += len(df)
        del df, run
    results = merge(per_chunk, key)
    if names is not None and per_chunk:  # judged on the whole table's names, after every chunk
        results.append(names.outcome())
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
        _describe(r, rows)
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
