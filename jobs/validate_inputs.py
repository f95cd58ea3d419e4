"""Step 1: validate the three input tables with their Great Expectations suites."""

from recsys_core.columns import INPUT_TABLES
from recsys_core.inputs import read_input, require_inputs
from recsys_core.validation import validate_frame

from jobs.common import JobContext, main_for

VALIDATION_DATASET = "validation"


def body(ctx: JobContext) -> dict:
    require_inputs(ctx.data_dir)
    report_dir = ctx.lake.partition(VALIDATION_DATASET, ctx.ds) / "inputs"
    rows = {}
    for table in INPUT_TABLES:
        summary = validate_frame(table, read_input(ctx.data_dir, table).to_pandas(), report_dir=report_dir)
        rows[table] = summary["rows"]
    return {"rows_in": rows, "rows_out": rows}


if __name__ == "__main__":
    main_for("validate_inputs", body)
