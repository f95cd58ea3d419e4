"""Great Expectations validation of the input and feature tables, with errors naming table, column and rule."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

import pandas as pd

from recsys_core.errors import DataValidationError
from recsys_core.schemas import contract, suite_dict

log = logging.getLogger(__name__)
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
EXISTS = "expect_column_to_exist"
DOCS_INDEX = Path("gx") / "uncommitted" / "data_docs" / "local_site" / "index.html"


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
        share = detail.get("unexpected_percent")
        parts.append(f"{detail['unexpected_count']} row(s) unexpected" + (f" ({share:.2f}%)" if share else ""))
        sample = detail.get("partial_unexpected_list") or []
        if sample:
            parts.append(f"e.g. {sample[:5]!r}")
    if detail.get("observed_value") is not None:
        parts.append(f"observed {detail['observed_value']!r}")
    if result.exception_info and result.exception_info.get("raised_exception"):
        parts.append(str(result.exception_info.get("exception_message", "")).splitlines()[0][:200])
    args = {
        k: (f"<{len(v)} values>" if isinstance(v, (list, set)) and len(v) > 10 else v)
        for k, v in cfg.kwargs.items()
        if k not in ("column", "column_list", "batch_id")
    }
    return f"column {column}: {cfg.type}{args if args else ''} failed" + (f" ({'; '.join(parts)})" if parts else "")


def end_of_day_epoch(ds: str) -> int:
    """The last second (Unix time, UTC) of the run date: no interaction may be later."""
    start = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC)
    return int((start + dt.timedelta(days=1)).timestamp()) - 1


def interaction_parameters(users: pd.DataFrame, items: pd.DataFrame, ds: str, max_orphan_share: float) -> dict:
    """Runtime values of the $PARAMETERs in the interactions suite."""
    return {
        "ds_end_epoch": end_of_day_epoch(ds),
        "user_ids": users["user_id"].tolist(),
        "item_ids": items["item_id"].tolist(),
        "min_known_share": 1.0 - max_orphan_share,
    }


def validate_frame(
    table: str,
    df: pd.DataFrame,
    docs_root: Path,
    suite_name: str | None = None,
    feature_columns: list[str] = (),
    parameters: dict | None = None,
) -> dict:
    """Run the suite `suite_name` (default: the table's) on df as a GX checkpoint that updates the Data Docs
    under docs_root; raise DataValidationError naming every failed column and expectation."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    suite_name = suite_name or table
    context = gx.get_context(mode="file", project_root_dir=str(docs_root))
    context.variables.progress_bars = {"globally": False}
    source = context.data_sources.add_or_update_pandas("recsys")
    asset = source.add_dataframe_asset(table) if table not in source.get_asset_names() else source.get_asset(table)
    batch = asset.add_batch_definition_whole_dataframe(f"{table}-whole") if not asset.batch_definitions \
        else asset.batch_definitions[0]
    # built in one go: add_expectation_configuration() merges e.g. every expect_column_to_exist into one
    suite = context.suites.add_or_update(
        gx.ExpectationSuite(
            name=suite_name,
            expectations=[
                ExpectationConfiguration(type=e["type"], kwargs=e["kwargs"])
                for e in _expectations(suite_name, df, list(feature_columns))
            ],
        )
    )
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=table, data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(name=table, validation_definitions=[definition],
                      actions=[UpdateDataDocsAction(name="data_docs")], result_format="SUMMARY")
    )
    run = checkpoint.run(batch_parameters={"dataframe": df}, expectation_parameters=parameters or {})
    result = next(iter(run.run_results.values()))
    report = Path(docs_root) / DOCS_INDEX
    (Path(docs_root) / f"{table}.json").write_text(json.dumps(result.to_json_dict(), indent=2, default=str))
    failed = [r for r in result.results if not r.success]
    # a missing column fails every rule on it; report only the cause
    missing = {r.expectation_config.kwargs["column"] for r in failed if r.expectation_config.type == EXISTS}
    failures = sorted(
        _describe(r)
        for r in failed
        if r.expectation_config.type == EXISTS or r.expectation_config.kwargs.get("column") not in missing
    )
    summary = {"table": table, "rows": len(df), "expectations": len(result.results), "failed": len(failures)}
    log.info("validated %s: %s (Data Docs: %s)", table, summary, report)
    if failures:
        raise DataValidationError(table, failures, str(report))
    return summary
