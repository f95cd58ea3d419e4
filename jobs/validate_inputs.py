"""Step 1: validate the three input tables with their Great Expectations suites and snapshot them for ds.

Every table is validated in chunks of about validation.chunk_rows rows, each key's rows in one chunk, and
the interactions are snapshotted batch by batch: no table is held whole, whatever its size."""

import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.common import INPUTS_PREFIX, JobContext, main_for
from recsys_core import columns as C
from recsys_core.inputs import conform, input_batches, input_chunks, read_input, require_inputs
from recsys_core.sorted_keys import distinct, member
from recsys_core.validation import interaction_parameters, validate_chunks

VALIDATION_DATASET = "validation"
KEYS = {C.USERS: C.USER_ID, C.ITEMS: C.ITEM_ID, C.INTERACTIONS: C.USER_ID}  # chunks keep each key's rows together
ROW_GROUP = 1 << 20  # rows per row group of the interactions snapshot (pyarrow's default for whole tables)


def validate(ctx: JobContext, table: str, docs, parameters: dict | None = None) -> int:
    chunks = input_chunks(ctx.data_dir, table, KEYS[table], ctx.config.validation.chunk_rows, ds=ctx.ds,
                          spill_root=docs)
    return validate_chunks(table, chunks, docs, parameters=parameters, key=KEYS[table])["rows"]


def snapshot_known_interactions(ctx: JobContext, user_ids: np.ndarray, item_ids: np.ndarray) -> tuple[int, int]:
    """Write the interactions naming known users and items, in input order, batch by batch; (kept, dropped)."""
    dataset = INPUTS_PREFIX + C.INTERACTIONS
    stage = ctx.lake.staging(dataset, ctx.ds)
    stage.mkdir()
    writer, pending, kept, dropped = None, [], 0, 0

    def write(rows: pa.Table) -> None:
        nonlocal writer
        rows = conform(C.INTERACTIONS, rows)
        writer = writer or pq.ParquetWriter(stage / "part-00000.parquet", rows.schema)
        writer.write_table(rows, row_group_size=ROW_GROUP)

    try:
        try:
            for batch in input_batches(ctx.data_dir, C.INTERACTIONS, ds=ctx.ds):
                known = member(batch.column(C.USER_ID).to_numpy(), user_ids) & member(batch.column(C.ITEM_ID).to_numpy(), item_ids)
                pending.append(batch.filter(pa.array(known)))
                kept += pending[-1].num_rows
                dropped += batch.num_rows - pending[-1].num_rows
                if sum(b.num_rows for b in pending) >= ROW_GROUP:  # whole row groups, as a one-shot write makes
                    rows = pa.Table.from_batches(pending)
                    write(rows.slice(0, ROW_GROUP))
                    pending = rows.slice(ROW_GROUP).to_batches()
            if pending:
                write(pa.Table.from_batches(pending))
        finally:
            if writer is not None:
                writer.close()
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # the published snapshot, if any, stays as it was
        raise
    ctx.lake.commit(stage, dataset, ctx.ds)
    return kept, dropped


def body(ctx: JobContext) -> dict:
    require_inputs(ctx.data_dir, ctx.ds)
    docs = ctx.lake.partition(VALIDATION_DATASET, ctx.ds)
    docs.mkdir(parents=True, exist_ok=True)
    rows_in = {t: validate(ctx, t, docs) for t in (C.USERS, C.ITEMS)}
    ids = {t: distinct(read_input(ctx.data_dir, t, columns=[KEYS[t]], ds=ctx.ds).column(0).to_numpy())
           for t in (C.USERS, C.ITEMS)}
    params = interaction_parameters(ids[C.USERS], ids[C.ITEMS], ctx.ds, ctx.config.validation.max_orphan_share)
    rows_in[C.INTERACTIONS] = validate(ctx, C.INTERACTIONS, docs, params)
    rows_out = {}
    for t in (C.USERS, C.ITEMS):
        data = read_input(ctx.data_dir, t, ds=ctx.ds)
        ctx.lake.write_table(conform(t, data), INPUTS_PREFIX + t, ctx.ds)
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
