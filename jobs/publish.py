"""Audit the ranked recommendations and publish ds to the warehouse in one transaction.

Nothing is read whole: the audit runs in DuckDB over the lake's Parquet files (within
AUDIT_MEMORY_LIMIT, spilling to a scratch folder of the work dir), and the publish streams the
recommendations to the warehouse in batches."""

import tempfile

import pyarrow.dataset as pads

from recsys_core import columns as C
from recsys_core.io import layout as L
from recsys_core.publish.audit import audit_recommendations
from recsys_core.publish.warehouse import open_warehouse
from recsys_core.redact import redacted
from recsys_core.step_runner import JobContext, main_for

# DuckDB's memory for the audit's joins and aggregates; beyond it they spill to disk
AUDIT_MEMORY_LIMIT = "512MB"


def body(ctx: JobContext) -> dict:
    recs = pads.dataset(ctx.lake.require(L.RECOMMENDATIONS, ctx.ds), format="parquet")
    interactions = pads.dataset(ctx.input_path(C.INTERACTIONS), format="parquet")
    users = ctx.read_input(C.USERS, [C.USER_ID]).column(C.USER_ID).to_numpy()
    items = ctx.read_input(C.ITEMS, [C.ITEM_ID, C.TITLE, C.YEAR, C.GENRES])
    with tempfile.TemporaryDirectory(prefix="publish-audit-", dir=ctx.work_dir) as spill:
        version = audit_recommendations(
            recs,
            users,
            interactions,
            items.column(C.ITEM_ID).to_numpy(),
            ctx.config.ranking.top_n,
            memory_limit=AUDIT_MEMORY_LIMIT,
            spill_dir=spill,
        )
    neighbors = ctx.lake.read_table(L.ITEM_NEIGHBORS, ctx.ds)
    result = open_warehouse(ctx.warehouse_url, ctx.config.warehouse.retries).publish(
        ctx.ds,
        ctx.run_id,
        {
            L.RECOMMENDATIONS: recs,
            L.ITEM_NEIGHBORS: neighbors.select([C.ITEM_ID, C.RANK, C.NEIGHBOR_ID, C.DISTANCE]),
            C.ITEMS: items,
        },
        version,
    )
    return {
        "rows_in": {L.RECOMMENDATIONS: result.rows[L.RECOMMENDATIONS]},
        "rows_out": result.rows,
        "publish": result.status,
        "checksum": result.checksum,
        "warehouse": redacted(ctx.warehouse_url),
    }


if __name__ == "__main__":
    main_for("publish", body)
