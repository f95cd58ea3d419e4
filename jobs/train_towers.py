"""Step 4: train the user and item towers on every interaction outside the held-out slice, streamed.

The examples (user row, item row, target) are written to the lake partition training_examples/ds=...
chunk by chunk and read back by tf.data, so memory is bounded by the feature tables and one chunk,
not by the number of interactions.
"""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads

from jobs.common import JobContext, main_for
from recsys_core import columns as C
from recsys_core.example_stream import ParquetExamples, write_examples
from recsys_core.examples import example_chunks
from recsys_core.features import feature_columns
from recsys_core.towers import fit_towers_on

MODEL_REF_FILE = "model.json"  # the model the rest of the run uses (written by evaluate_model)
CANDIDATE_REF_FILE = "candidate.json"  # the model this run trained
EXAMPLES_FILE = "part-00000.parquet"
READ_ROWS = 4_000_000  # interactions per chunk of examples


def training_features(ctx: JobContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(user features, item features) sorted by id, the held-out users' features replaced by the ones
    computed without their held-out rows (no target leakage)."""
    users = ctx.lake.read_table(C.USER_FEATURES, ctx.ds).to_pandas()
    held_users = ctx.lake.read_table(C.HOLDOUT_USER_FEATURES, ctx.ds).to_pandas()
    items = ctx.lake.read_table(C.ITEM_FEATURES, ctx.ds).to_pandas()
    users = pd.concat([users[~users[C.USER_ID].isin(held_users[C.USER_ID])], held_users], ignore_index=True)
    return (users.sort_values(C.USER_ID, kind="stable").reset_index(drop=True),
            items.sort_values(C.ITEM_ID, kind="stable").reset_index(drop=True))


def write_training_examples(ctx: JobContext, users: pd.DataFrame, items: pd.DataFrame) -> tuple[Path, int, int]:
    """Every interaction of ds outside the held-out slice as examples (negatives included), in the lake.
    Returns the file, its rows and the interactions read."""
    interactions = pads.dataset(ctx.input_path(C.INTERACTIONS))
    held = ctx.lake.read_table(C.HOLDOUT, ctx.ds, [C.USER_ID, C.ITEM_ID]).to_pandas()
    cfg = ctx.config.model
    chunks = example_chunks(
        lambda: interactions.to_batches(columns=[C.USER_ID, C.ITEM_ID, C.RATING], batch_size=READ_ROWS),
        users[C.USER_ID].to_numpy(), items[C.ITEM_ID].to_numpy(), cfg, exclude=held,
    )
    stage = ctx.lake.staging(C.TRAINING_EXAMPLES, ctx.ds)
    stage.mkdir()
    rows = write_examples(chunks, stage / EXAMPLES_FILE, cfg.validation_share, cfg.seed)
    return ctx.lake.commit(stage, C.TRAINING_EXAMPLES, ctx.ds) / EXAMPLES_FILE, rows, interactions.count_rows()


def feature_matrices(users: pd.DataFrame, items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(user matrix, item matrix, user feature columns, item feature columns): the rows examples point at."""
    ucols = feature_columns(list(users.columns), C.USER_ID)
    icols = feature_columns(list(items.columns), C.ITEM_ID)
    return users[ucols].to_numpy(np.float64), items[icols].to_numpy(np.float64), ucols, icols


def model_version(ctx: JobContext, *arrays, files: tuple[Path, ...] = ()) -> str:
    """Deterministic in ds, config and training data: a rerun on the same inputs gives the same version."""
    h = hashlib.sha1(json.dumps(ctx.config.to_dict(), sort_keys=True).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    for path in files:
        with open(path, "rb") as f:
            while block := f.read(1 << 24):
                h.update(block)
    return f"m{ctx.ds.replace('-', '')}-{h.hexdigest()[:10]}"


def body(ctx: JobContext) -> dict:
    users, items = training_features(ctx)
    xu, xi, ucols, icols = feature_matrices(users, items)
    path, rows, interactions = write_training_examples(ctx, users, items)
    model = fit_towers_on(xu, xi, ParquetExamples(path), ctx.config.model, ucols, icols)
    version = model_version(ctx, xu, xi, files=(path,))
    model.meta.update(version=version, ds=ctx.ds, run_id=ctx.run_id)
    saved = model.save(ctx.models_dir / version)
    ctx.lake.write_json({"version": version, "path": str(saved)}, C.MODEL_REF, ctx.ds, CANDIDATE_REF_FILE)
    metrics = model.meta["metrics"]
    return {
        "rows_in": {C.INTERACTIONS: interactions, C.USERS: len(users), C.ITEMS: len(items)},
        "rows_out": {C.TRAINING_EXAMPLES: rows},
        "model_version": version,
        "model_mode": ctx.config.model.mode,
        "final_loss": metrics["loss"][-1],
        **{k: v for k, v in metrics.items() if k.startswith("val_") and not isinstance(v, list)},
    }


if __name__ == "__main__":
    main_for("train_towers", body)
