"""The verdict on a whole table from Great Expectations results on its chunks (see key_chunks.py).

Each chunk is validated by GX with the table's suite. Per expectation, the chunks' results are merged
into the one GX would give on the whole table:
- row-wise rules (GX results with an unexpected_count: not null, between, in set, ...): the counts add up,
  and success is recomputed from the totals, so `mostly` applies to the whole table, not to each chunk;
- uniqueness rules: exact only when the chunks were cut by a key the rule includes (every duplicate
  then lies in one chunk); anything else raises rather than give a wrong verdict;
- the row count: the chunks' counts add up, checked against the rule's bounds;
- a column's max or min: the largest (smallest) of the chunks' values, checked against the bounds;
- schema rules (column exists, column type): the table passes if every chunk does.
Any other rule cannot be merged and raises when the table took more than one chunk."""

from __future__ import annotations

from recsys_core.errors import ConfigError

UNIQUENESS = {
    "expect_column_values_to_be_unique": "column",
    "expect_compound_columns_to_be_unique": "column_list",
}
ROW_COUNT = "expect_table_row_count_to_be_between"
EXTREMES = {"expect_column_max_to_be_between": max, "expect_column_min_to_be_between": min}
SCHEMA_RULES = {
    "expect_column_to_exist",
    "expect_column_values_to_be_in_type_list",
    "expect_column_values_to_be_of_type",
    "expect_table_columns_to_match_set",
    "expect_table_columns_to_match_ordered_list",
}
SAMPLE = 20  # unexpected values kept for the report, as GX's partial_unexpected_list


def outcome(result) -> dict:
    """One GX ExpectationValidationResult as a plain dict."""
    cfg = result.expectation_config
    exception = None
    if result.exception_info and result.exception_info.get("raised_exception"):
        exception = str(result.exception_info.get("exception_message", ""))
    return {
        "id": cfg.id,
        "type": cfg.type,
        "kwargs": {k: v for k, v in cfg.kwargs.items() if k != "batch_id"},
        "success": bool(result.success),
        "result": dict(result.result or {}),
        "exception": exception,
        "meta": dict(cfg.meta or {}),
    }


def check_mergeable(outcomes: list[dict], key: str | None) -> None:
    """Raise unless every rule of the suite merges exactly over chunks cut by `key`."""
    for o in outcomes:
        if o["exception"]:  # e.g. its column is missing: the rule fails whatever the chunks
            continue
        if o["type"] in UNIQUENESS:
            columns = o["kwargs"][UNIQUENESS[o["type"]]]
            columns = [columns] if isinstance(columns, str) else list(columns)
            if key not in columns:
                raise ConfigError(
                    f"{o['type']} on {columns or 'records'} cannot be checked chunk by chunk on chunks "
                    f"cut by {key!r}; give the table a chunk key the rule includes"
                )
        elif (
            o["type"] != ROW_COUNT
            and o["type"] not in EXTREMES
            and o["type"] not in SCHEMA_RULES
            and "unexpected_count" not in o["result"]
        ):
            raise ConfigError(
                f"{o['type']} cannot be merged over chunks; validate the table in one chunk "
                f"(raise validation.chunk_rows) or drop the rule"
            )


def _row_wise(parts: list[dict]) -> dict:
    first = parts[0]
    element = sum(p["result"].get("element_count", 0) for p in parts)
    missing = sum(p["result"].get("missing_count", 0) for p in parts)
    unexpected = sum(p["result"]["unexpected_count"] for p in parts)
    sample = [v for p in parts for v in p["result"].get("partial_unexpected_list", [])][:SAMPLE]
    present = element - missing
    share = unexpected / present if present else 0.0
    mostly = first["kwargs"].get("mostly")
    success = present == 0 or (1.0 - share >= mostly if mostly is not None else unexpected == 0)
    kwargs = dict(first["kwargs"])
    for name, value in first[
        "kwargs"
    ].items():  # per-chunk value sets (the chunk's unknown ids): their union
        values = [p["kwargs"].get(name) for p in parts]
        if isinstance(value, list) and any(v != value for v in values):
            kwargs[name] = sorted({x for v in values for x in v}, key=repr)
    result = {
        "element_count": element,
        "unexpected_count": unexpected,
        "unexpected_percent": 100.0 * share,
        "partial_unexpected_list": sample,
    }
    if "missing_count" in first["result"]:
        result["missing_count"] = missing
    return {**first, "kwargs": kwargs, "success": success, "result": result}


def _row_count(parts: list[dict]) -> dict:
    first = parts[0]
    rows = sum(p["result"].get("observed_value", 0) for p in parts)
    low, high = first["kwargs"].get("min_value"), first["kwargs"].get("max_value")
    success = (low is None or rows >= low) and (high is None or rows <= high)
    return {**first, "success": success, "result": {"observed_value": rows}}


def _extreme(parts: list[dict]) -> dict:
    first = parts[0]
    values = [p["result"].get("observed_value") for p in parts]
    values = [v for v in values if v is not None]
    if not values:  # no chunk had a value: as GX on the whole table
        return next((p for p in parts if not p["success"]), first)
    value = EXTREMES[first["type"]](values)
    low, high = first["kwargs"].get("min_value"), first["kwargs"].get("max_value")
    strict_low, strict_high = first["kwargs"].get("strict_min"), first["kwargs"].get("strict_max")
    success = (low is None or (value > low if strict_low else value >= low)) and (
        high is None or (value < high if strict_high else value <= high)
    )
    return {**first, "success": success, "result": {"observed_value": value}}


def merge(per_chunk: list[list[dict]], key: str | None) -> list[dict]:
    """One outcome per expectation of the suite, for the whole table."""
    if len(per_chunk) == 1:
        return per_chunk[0]
    check_mergeable(per_chunk[0], key)
    by_id: dict[str, list[dict]] = {}
    for outcomes in per_chunk:
        for o in outcomes:
            by_id.setdefault(o["id"], []).append(o)
    merged = []
    for parts in by_id.values():
        broken = next((p for p in parts if p["exception"]), None)
        if broken is not None:
            merged.append(broken)
        elif parts[0]["type"] == ROW_COUNT:
            merged.append(_row_count(parts))
        elif parts[0]["type"] in EXTREMES:
            merged.append(_extreme(parts))
        elif parts[0]["type"] in SCHEMA_RULES or not all(
            "unexpected_count" in p["result"] for p in parts
        ):
            merged.append(next((p for p in parts if not p["success"]), parts[0]))
        else:
            merged.append(_row_wise(parts))
    return merged
