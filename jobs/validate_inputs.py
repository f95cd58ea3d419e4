"""Step 1: validate the three input tables with their Great Expectations suites and snapshot them for ds."""

from jobs.common import INPUTS_PREFIX, JobContext, main_for
from recsys_core import columns as C
from recsys_core.inputs import conform, read_input, require_inputs
from recsys_core.validation import interaction_parameters, validate_frame

VALIDATION_DATASET = "validation"

def body(ctx: JobContext) -> dict:
    require_inputs(ctx.data_dir, ctx.ds)
    docs = ctx.lake.partition(VALIDATION_DATASET, ctx.ds)
    docs.mkdir(parents=True, exist_ok=True)
    raw = {t: read_input(ctx.data_dir, t, ds=ctx.ds) for t in C.INPUT_TABLES}
    rows_in = {t: data.num_rows for t, data in raw.items()}
    frames = {t: raw[t].to_pandas() for t in (C.USERS, C.ITEMS)}
    for t, df in frames.items():
        validate_frame(t, df, docs)
    users = frames[C.USERS][C.USER_ID]
    items = frames[C.ITEMS][C.ITEM_ID]
    inter = raw[C.INTERACTIONS].to_pandas()
    params = interaction_parameters(frames[C.USERS], frames[C.ITEMS], ctx.ds, ctx.config.validation.max_orphan_share)
    validate_frame(C.INTERACTIONS, inter, docs, parameters=params)
    known = inter[C.USER_ID].isin(users) & inter[C.ITEM_ID].isin(items)
    orphans = int((~known).sum())
    raw[C.INTERACTIONS] = raw[C.INTERACTIONS].filter(known.to_numpy())
    rows_out = {}
    for t, data in raw.items():
        ctx.lake.write_table(conform(t, data), INPUTS_PREFIX + t, ctx.ds)
        rows_out[t] = data.num_rows
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "orphan_interactions_dropped": orphans,
        "data_docs": str(docs),
    }


if __name__ == "__main__":
    main_for("validate_inputs", body)
