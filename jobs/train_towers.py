"""Step 4: train the user and item towers on every interaction outside the held-out slice."""

import hashlib
import json

import numpy as np
import pandas as pd

from jobs.common import JobContext, main_for
from recsys_core import columns as C
from recsys_core.examples import training_examples
from recsys_core.towers import fit_towers

MODEL_REF_FILE = "model.json"  # the model the rest of the run uses (written by evaluate_model)
CANDIDATE_REF_FILE = "candidate.json"  # the model this run trained


def training_interactions(ctx: JobContext, held: pd.DataFrame) -> pd.DataFrame:
    """The validated interactions of ds without the held-out (user_id, item_id) rows."""
    inter = ctx.read_input(C.INTERACTIONS, [C.USER_ID, C.ITEM_ID, C.RATING]).to_pandas()
    marked = inter.merge(held[[C.USER_ID, C.ITEM_ID]].assign(_held=True), on=[C.USER_ID, C.ITEM_ID], how="left")
    return inter[marked["_held"].isna().to_numpy()]


def training_data(ctx: JobContext) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(interactions, user features, item features) to train on: the held-out rows removed, and the
    held-out users' features replaced by the ones computed without those rows (no target leakage)."""
    users = ctx.lake.read_table(C.USER_FEATURES, ctx.ds).to_pandas()
    held_users = ctx.lake.read_table(C.HOLDOUT_USER_FEATURES, ctx.ds).to_pandas()
    items = ctx.lake.read_table(C.ITEM_FEATURES, ctx.ds).to_pandas()
    inter = training_interactions(ctx, ctx.lake.read_table(C.HOLDOUT, ctx.ds, [C.USER_ID, C.ITEM_ID]).to_pandas())
    users = pd.concat([users[~users[C.USER_ID].isin(held_users[C.USER_ID])], held_users], ignore_index=True)
    return inter, users.sort_values(C.USER_ID, kind="stable").reset_index(drop=True), items


def model_version(ctx: JobContext, *arrays) -> str:
    """Deterministic in ds, config and training data: a rerun on the same inputs gives the same version."""
    h = hashlib.sha1(json.dumps(ctx.config.to_dict(), sort_keys=True).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return f"m{ctx.ds.replace('-', '')}-{h.hexdigest()[:10]}"


def body(ctx: JobContext) -> dict:
    inter, users, items = training_data(ctx)
    xu, xi, y = training_examples(inter, users, items, ctx.config.model)
    model = fit_towers(xu, xi, y, ctx.config.model)
    version = model_version(ctx, xu.to_numpy(), xi.to_numpy(), y)
    model.meta.update(version=version, ds=ctx.ds, run_id=ctx.run_id)
    path = model.save(ctx.models_dir / version)
    ctx.lake.write_json({"version": version, "path": str(path)}, C.MODEL_REF, ctx.ds, CANDIDATE_REF_FILE)
    metrics = model.meta["metrics"]
    return {
        "rows_in": {C.INTERACTIONS: len(inter), "training_examples": len(y)},
        "rows_out": {},
        "model_version": version,
        "model_mode": ctx.config.model.mode,
        "final_loss": metrics["loss"][-1],
        **{k: v for k, v in metrics.items() if k.startswith("val_") and not isinstance(v, list)},
    }


if __name__ == "__main__":
    main_for("train_towers", body)
