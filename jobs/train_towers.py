"""Step 4: train the user and item towers on the interactions and save a versioned model."""

import hashlib
import json

import numpy as np
import pandas as pd

from jobs.common import JobContext, main_for
from recsys_core import columns as C
from recsys_core.errors import RecsysError
from recsys_core.features import feature_columns
from recsys_core.towers import fit_towers

MODEL_REF_FILE = "model.json"


def training_rows(ctx: JobContext):
    """Aligned (user features, item features, rating) rows, one per interaction with known user and item."""
    users = ctx.lake.read_table(C.USER_FEATURES, ctx.ds).to_pandas()
    items = ctx.lake.read_table(C.ITEM_FEATURES, ctx.ds).to_pandas()
    inter = ctx.read_input(C.INTERACTIONS, [C.USER_ID, C.ITEM_ID, C.RATING]).to_pandas()
    u = pd.Index(users[C.USER_ID]).get_indexer(inter[C.USER_ID])
    i = pd.Index(items[C.ITEM_ID]).get_indexer(inter[C.ITEM_ID])
    known = (u >= 0) & (i >= 0)
    if not known.any():
        raise RecsysError("no interaction refers to a known user and item: nothing to train on")
    ucols = feature_columns(list(users.columns), C.USER_ID)
    icols = feature_columns(list(items.columns), C.ITEM_ID)
    return (
        users[ucols].iloc[u[known]].reset_index(drop=True),
        items[icols].iloc[i[known]].reset_index(drop=True),
        inter[C.RATING].to_numpy()[known],
    )


def model_version(ctx: JobContext, *arrays) -> str:
    """Deterministic in ds, config and training data: a rerun on the same inputs gives the same version."""
    h = hashlib.sha1(json.dumps(ctx.config.to_dict(), sort_keys=True).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return f"m{ctx.ds.replace('-', '')}-{h.hexdigest()[:10]}"


def body(ctx: JobContext) -> dict:
    xu, xi, y = training_rows(ctx)
    model = fit_towers(xu, xi, y, ctx.config.model)
    version = model_version(ctx, xu.to_numpy(), xi.to_numpy(), y)
    model.meta.update(version=version, ds=ctx.ds, run_id=ctx.run_id)
    path = model.save(ctx.models_dir / version)
    ctx.lake.write_json({"version": version, "path": str(path)}, C.MODEL_REF, ctx.ds, MODEL_REF_FILE)
    metrics = model.meta["metrics"]
    return {
        "rows_in": {"training_rows": len(y)},
        "rows_out": {},
        "model_version": version,
        "model_mode": ctx.config.model.mode,
        "final_loss": metrics["loss"][-1],
        **{k: v for k, v in metrics.items() if k.startswith("val_") and not isinstance(v, list)},
    }


if __name__ == "__main__":
    main_for("train_towers", body)
