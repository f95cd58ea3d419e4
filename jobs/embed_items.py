"""Step 6: compute every item's embedding v_m once with the item tower."""

import numpy as np
import pyarrow as pa

from jobs.common import JobContext, main_for
from jobs.train_towers import MODEL_REF_FILE
from recsys_core import columns as C
from recsys_core.features import feature_columns
from recsys_core.towers import TwoTowerModel


def load_model(ctx: JobContext) -> tuple[TwoTowerModel, str]:
    ref = ctx.lake.read_json(C.MODEL_REF, ctx.ds, MODEL_REF_FILE)
    return TwoTowerModel.load(ref["path"]), ref["version"]


def embedding_table(ids: np.ndarray, id_column: str, vectors: np.ndarray) -> pa.Table:
    dim = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).ravel())
    return pa.table({id_column: pa.array(ids, pa.int64()), C.EMBEDDING: pa.FixedSizeListArray.from_arrays(flat, dim)})


def body(ctx: JobContext) -> dict:
    model, version = load_model(ctx)
    items = ctx.lake.read_table(C.ITEM_FEATURES, ctx.ds).to_pandas()
    vectors = model.embed_items(items[feature_columns(list(items.columns), C.ITEM_ID)])
    table = embedding_table(items[C.ITEM_ID].to_numpy(), C.ITEM_ID, vectors)
    ctx.lake.write_table(table, C.ITEM_EMBEDDINGS, ctx.ds)
    return {"rows_in": {C.ITEM_FEATURES: len(items)}, "rows_out": {C.ITEM_EMBEDDINGS: table.num_rows},
            "model_version": version}


def read_embeddings(ctx: JobContext, dataset: str, id_column: str) -> tuple[np.ndarray, np.ndarray]:
    t = ctx.lake.read_table(dataset, ctx.ds)
    col = t.column(C.EMBEDDING).combine_chunks()
    dim = col.type.list_size
    return t.column(id_column).to_numpy(), col.flatten().to_numpy().reshape(-1, dim)


if __name__ == "__main__":
    main_for("embed_items", body)
