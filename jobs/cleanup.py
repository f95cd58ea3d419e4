"""After the report: delete what the retention settings no longer keep ([retention] of the config), so
a nightly's disk use and warehouse size stay flat (recsys_core/io/retention.py says what is kept)."""

from recsys_core.io.retention import clean, cutoff
from recsys_core.publish.warehouse import open_warehouse
from recsys_core.step_runner import JobContext, main_for


def body(ctx: JobContext) -> dict:
    cfg = ctx.config.retention
    removed = clean(ctx.work_dir, ctx.ds, cfg)
    oldest = cutoff(ctx.ds, cfg.warehouse_days)
    dropped = (
        open_warehouse(ctx.warehouse_url, ctx.config.warehouse.retries).drop_before(oldest)
        if oldest
        else {}
    )
    return {
        "rows_in": {},
        "rows_out": {},
        "removed": {
            "lake_partitions": removed.lake_partitions,
            "reports": removed.reports,
            "models": removed.models,
            "bytes": removed.bytes,
            "warehouse_rows": dropped,
        },
    }


if __name__ == "__main__":
    main_for("cleanup", body)
