"""Audit the ranked recommendations and publish ds to the warehouse in one transaction."""

import pyarrow as pa

from recsys_core import columns as C
from recsys_core.io import layout as L
from recsys_core.publish.audit import audit_recommendations
from recsys_core.publish.warehouse import open_warehouse
from recsys_core.redact import redacted
from recsys_core.step_runner import JobContext, main_for

RECOMMENDATION_COLUMNS = [
    C.USER_ID,
    C.RANK,
    C.ITEM_ID,
    C.SCORE,
    C.PREDICTED_RATING,
    C.REASON,
    C.MODEL_VERSION,
    C.RUN_ID,
]


def body(ctx: JobContext) -> dict:
    recs = ctx.lake.read_table(L.RECOMMENDATIONS, ctx.ds).to_pandas()
    users = ctx.read_input(C.USERS, [C.USER_ID]).column(C.USER_ID).to_numpy()
    items = ctx.read_input(C.ITEMS, [C.ITEM_ID, C.TITLE, C.YEAR, C.GENRES])
    interactions = ctx.read_input(C.INTERACTIONS, [C.USER_ID, C.ITEM_ID]).to_pandas()
    audit_recommendations(
        recs, users, interactions, items.column(C.ITEM_ID).to_numpy(), ctx.config.ranking.top_n
    )
    neighbors = ctx.lake.read_table(L.ITEM_NEIGHBORS, ctx.ds)
    version = recs[C.MODEL_VERSION].iloc[0] if len(recs) else None
    recs = recs[RECOMMENDATION_COLUMNS].sort_values([C.USER_ID, C.RANK])
    result = open_warehouse(ctx.warehouse_url, ctx.config.warehouse.retries).publish(
        ctx.ds,
        ctx.run_id,
        {
            L.RECOMMENDATIONS: pa.Table.from_pandas(recs, preserve_index=False),
            L.ITEM_NEIGHBORS: neighbors.select([C.ITEM_ID, C.RANK, C.NEIGHBOR_ID, C.DISTANCE]),
            C.ITEMS: items,
        },
        version,
    )
    return {
        "rows_in": {L.RECOMMENDATIONS: len(recs)},
        "rows_out": result.rows,
        "publish": result.status,
        "checksum": result.checksum,
        "warehouse": redacted(ctx.warehouse_url),
    }


if __name__ == "__main__":
    main_for("publish", body)
