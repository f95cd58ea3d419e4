"""Validate the three input tables with their Great Expectations suites and snapshot them for ds.

Every table is validated in chunks of about validation.chunk_rows rows, each key's rows in one chunk, and
the interactions are snapshotted batch by batch: no table is held whole, whatever its size."""

import numpy as np
import pyarrow as pa

from recsys_core import columns as C
from recsys_core.io import layout as L
from recsys_core.io.inputs import conform, input_batches, input_chunks, read_input, wait_for_inputs
from recsys_core.io.sorted_keys import distinct, member
from recsys_core.step_runner import JobContext, main_for
from recsys_core.validation.checkpoints import interaction_parameters, validate_chunks

KEYS = {
    C.USERS: C.USER_ID,
    C.ITEMS: C.ITEM_ID,
    C.INTERACTIONS: C.USER_ID,
}  # chunks keep each key's rows together
ROW_GROUP = (
    1 << 20
)  # rows per row group of the interactions snapshot (pyarrow's default for whole tables)


def validate(ctx: JobContext, table: str, docs, parameters: dict | None = None) -> int:
    chunks = input_chunks(
        ctx.data_dir,
        table,
        KEYS[table],
        ctx.config.validation.chunk_rows,
        ds=ctx.ds,
        spill_root=docs,
    )
    return validate_chunks(table, chunks, docs, parameters=parameters, key=KEYS[table])["rows"]


def snapshot_known_interactions(
    ctx: JobContext, user_ids: np.ndarray, item_ids: np.ndarray
) -> tuple[int, int]:
    """Write the interactions naming known users and items, in input order, batch by batch; (kept, dropped)."""
    pending, kept, dropped = [], 0, 0
    with ctx.lake.parquet_writer(L.input_dataset(C.INTERACTIONS), ctx.ds) as out:
        for batch in input_batches(ctx.data_dir, C.INTERACTIONS, ds=ctx.ds):
            known = member(batch.column(C.USER_ID).to_numpy(), user_ids) & member(
                batch.column(C.ITEM_ID).to_numpy(), item_ids
            )
            pending.append(batch.filter(pa.array(known)))
            kept += pending[-1].num_rows
            dropped += batch.num_rows - pending[-1].num_rows
            if (
                sum(b.num_rows for b in pending) >= ROW_GROUP
            ):  # whole row groups, as a one-shot write makes
                rows = pa.Table.from_batches(pending)
                out.write(
                    conform(C.INTERACTIONS, rows.slice(0, ROW_GROUP)), row_group_size=ROW_GROUP
                )
                pending = rows.slice(ROW_GROUP).to_batches()
        if pending:
            out.write(
                conform(C.INTERACTIONS, pa.Table.from_batches(pending)), row_group_size=ROW_GROUP
            )
    return kept, dropped


def body(ctx: JobContext) -> dict:
    wait_for_inputs(ctx.data_dir, ctx.ds, ctx.config.validation.input_wait_seconds)
    docs = ctx.lake.partition(L.VALIDATION, ctx.ds)
    docs.mkdir(parents=True, exist_ok=True)
    rows_in = {t: validate(ctx, t, docs) for t in (C.USERS, C.ITEMS)}
    ids = {
        t: distinct(read_input(ctx.data_dir, t, columns=[KEYS[t]], ds=ctx.ds).column(0).to_numpy())
        for t in (C.USERS, C.ITEMS)
    }
    model = ctx.config.model
    # the towers learn from liked interactions (softmax, classification): a feed without one (every
    # rating equal and below the threshold) is refused here, not after the Spark features
    learns_from_likes = model.mode != "regression" and model.label == "liked"
    params = interaction_parameters(
        ids[C.USERS],
        ids[C.ITEMS],
        ctx.ds,
        ctx.config.validation.max_orphan_share,
        min_top_rating=model.like_threshold if learns_from_likes else 0.0,
    )
    rows_in[C.INTERACTIONS] = validate(ctx, C.INTERACTIONS, docs, params)
    rows_out = {}
    for t in (C.USERS, C.ITEMS):
        data = read_input(ctx.data_dir, t, ds=ctx.ds)
        ctx.lake.write_table(conform(t, data), L.input_dataset(t), ctx.ds)
        rows_out[t] = data.num_rows
    rows_out[C.INTERACTIONS], orphans = snapshot_known_interactions(ctx, ids[C.USERS], ids[C.ITEMS])
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "orphan_interactions_dropped": orphans,
        "data_docs": str(docs),
    }


if __name__ == "__main__":
    main_for("validate_inputs", body)
