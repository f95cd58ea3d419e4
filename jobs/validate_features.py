"""Validate the feature tables (keys unique, every feature present, finite and in range)."""

import pyarrow.dataset as pads

from recsys_core import columns as C
from recsys_core.features.names import feature_columns
from recsys_core.io import layout as L
from recsys_core.io.key_chunks import key_chunks
from recsys_core.step_runner import JobContext, main_for
from recsys_core.validation.checkpoints import validate_chunks


def body(ctx: JobContext) -> dict:
    docs = ctx.lake.partition(L.VALIDATION, ctx.ds)
    docs.mkdir(parents=True, exist_ok=True)
    rows = {}
    # (table, suite, key): the held-out users' features are user features, checked by the same suite
    for dataset, suite, key in (
        (L.USER_FEATURES, L.USER_FEATURES, C.USER_ID),
        (L.ITEM_FEATURES, L.ITEM_FEATURES, C.ITEM_ID),
        (L.HOLDOUT_USER_FEATURES, L.USER_FEATURES, C.USER_ID),
    ):
        data = pads.dataset(
            ctx.lake.require(dataset, ctx.ds), format="parquet", partitioning="hive"
        )
        chunks = key_chunks(data, key, ctx.config.validation.chunk_rows, spill_root=docs)
        features = feature_columns(data.schema.names, key)
        rows[dataset] = validate_chunks(
            dataset, chunks, docs, suite_name=suite, feature_columns=features, key=key
        )["rows"]
    return {"rows_in": rows, "rows_out": rows}


if __name__ == "__main__":
    main_for("validate_features", body)
