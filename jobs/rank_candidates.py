"""Step 9: score each user's candidates with the model (v_u once per user) and keep the top N."""

import numpy as np
import pyarrow as pa

from jobs.common import JobContext, main_for
from jobs.embed_items import load_model, read_embeddings
from recsys_core import columns as C
from recsys_core.features import feature_columns
from recsys_core.ranking import rank_candidates


def body(ctx: JobContext) -> dict:
    model, version = load_model(ctx)
    users = ctx.lake.read_table(C.USER_FEATURES, ctx.ds).to_pandas()
    user_vectors = model.embed_users(users[feature_columns(list(users.columns), C.USER_ID)])
    item_ids, item_vectors = read_embeddings(ctx, C.ITEM_EMBEDDINGS, C.ITEM_ID)
    candidates = ctx.lake.read_table(C.CANDIDATES, ctx.ds).to_pandas()
    ranked = rank_candidates(
        candidates, users[C.USER_ID].to_numpy(), user_vectors, item_ids, item_vectors, ctx.config.ranking.top_n
    )
    ranked[C.PREDICTED_RATING] = model.output(ranked[C.SCORE].to_numpy()).astype(np.float64)
    ranked[C.MODEL_VERSION] = version
    ranked[C.RUN_ID] = ctx.run_id
    ctx.lake.write_table(pa.Table.from_pandas(ranked, preserve_index=False), C.RECOMMENDATIONS, ctx.ds)
    return {
        "rows_in": {C.CANDIDATES: len(candidates), C.USERS: len(users)},
        "rows_out": {C.RECOMMENDATIONS: len(ranked)},
        "users_ranked": int(ranked[C.USER_ID].nunique()),
        "model_version": version,
    }


if __name__ == "__main__":
    main_for("rank_candidates", body)
