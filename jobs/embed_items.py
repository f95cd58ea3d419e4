"""Compute every item's embedding v_m once with the item tower."""

from recsys_core import columns as C
from recsys_core.features.names import feature_columns
from recsys_core.io import layout as L
from recsys_core.model.embeddings import embedding_table
from recsys_core.model.registry import load_serving
from recsys_core.step_runner import JobContext, main_for


def body(ctx: JobContext) -> dict:
    model, version = load_serving(ctx.lake, ctx.ds)
    items = ctx.lake.read_table(L.ITEM_FEATURES, ctx.ds).to_pandas()
    vectors = model.embed_items(
        items[feature_columns(list(items.columns), C.ITEM_ID)], items[C.ITEM_ID].to_numpy()
    )
    table = embedding_table(items[C.ITEM_ID].to_numpy(), C.ITEM_ID, vectors)
    ctx.lake.write_table(table, L.ITEM_EMBEDDINGS, ctx.ds)
    return {
        "rows_in": {L.ITEM_FEATURES: len(items)},
        "rows_out": {L.ITEM_EMBEDDINGS: table.num_rows},
        "model_version": version,
    }


if __name__ == "__main__":
    main_for("embed_items", body)
