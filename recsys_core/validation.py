"""Great Expectations validation of the input and feature tables, with errors naming table, column and rule."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pandas as pd

from recsys_core.errors import DataValidationError
from recsys_core.schemas import contract, suite_dict

log = logging.getLogger(__name__)
EXISTS = "expect_column_to_exist"
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


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
        e for e in expectations if not (e["kwargs"].get("column") in optional and e["kwargs"]["column"] not in df)
    ]
    for column in feature_columns:
        for template in raw.get("meta", {}).get("per_feature_column", []):
            expectations.append({"type": template["type"], "kwargs": {"column": column, **template["kwargs"]}})
    return expectations


def _describe(result) -> str:
    cfg = result.expectation_config
    column = cfg.kwargs.get("column") or cfg.kwargs.get("column_list") or "(table)"
    detail = result.result or {}
    parts = []
    if detail.get("unexpected_count"):
        parts.append(f"{detail['unexpected_count']} row(s) unexpected")
        sample = detail.get("partial_unexpected_list") or []
        if sample:
            parts.append(f"e.g. {sample[:5]!r}")
    if "observed_value" in detail and detail["observed_value"] is not None:
        parts.append(f"observed {detail['observed_value']!r}")
    if result.exception_info and result.exception_info.get("raised_exception"):
        parts.append(str(result.exception_info.get("exception_message", "")).splitlines()[0][:200])
    args = {k: v for k, v in cfg.kwargs.items() if k not in ("column", "column_list", "batch_id")}
    return f"column {column}: {cfg.type}{args if args else ''} failed" + (f" ({'; '.join(parts)})" if parts else "")


def validate_frame(
    table: str,
    df: pd.DataFrame,
    suite_name: str | None = None,
    feature_columns: list[str] = (),
    report_dir: Path | None = None,
) -> dict:
    """Run the suite `suite_name` (default: the table's) on df; raise DataValidationError on any failure."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite_name = suite_name or table
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch = (
        context.data_sources.add_pandas("recsys")
        .add_dataframe_asset(table)
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": df})
    )
    # built in one go: add_expectation_configuration() merges e.g. every expect_column_to_exist into one
    suite = gx.ExpectationSuite(
        name=suite_name,
        expectations=[
            ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"])
            for e in _expectations(suite_name, df, list(feature_columns))
        ],
    )
    result = batch.validate(suite, result_format="SUMMARY")
    report = None
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        report = report_dir / f"{table}.json"
        report.write_text(json.dumps(result.to_json_dict(), indent=2, default=str))
    failed = [r for r in result.results if not r.success]
    # a missing column fails every rule on it; report only the cause
    missing = {r.expectation_config.kwargs["column"] for r in failed if r.expectation_config.type == EXISTS}
    failures = sorted(
        _describe(r)
        for r in failed
        if r.expectation_config.type == EXISTS or r.expectation_config.kwargs.get("column") not in missing
    )
    summary = {"table": table, "rows": len(df), "expectations": len(result.results), "failed": len(failures)}
    log.info("validated %s: %s", table, summary)
    if failures:
        raise DataValidationError(table, failures, str(report) if report else None)
    return summary
