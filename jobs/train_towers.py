"""Train the user and item towers on every interaction outside the held-out slice.

The softmax towers (the default) read the interactions in time order (recsys_core/model/
softmax_training.py); most nights they start from the blessed model and train on what is new plus a
replay of the rest, and every `model.full_retrain_days` from scratch (recsys_core/model/warm_start.py).
For the regression and classification towers the examples (user row, item row, target) are written
to the lake partition training_examples/ds=... chunk by chunk and read back by tf.data, so memory is
bounded by the feature tables and one chunk, not by the number of interactions.
"""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads

from recsys_core import columns as C
from recsys_core.io import layout as L
from recsys_core.io.layout import MODEL_FILE
from recsys_core.model.input_pipeline import ParquetExamples, write_examples
from recsys_core.model.registry import model_version, write_candidate
from recsys_core.model.softmax_training import fit_softmax_towers
from recsys_core.model.training import fit_towers_on
from recsys_core.model.training_examples import example_chunks, feature_matrices, without_pairs
from recsys_core.model.tuning import tune
from recsys_core.model.warm_start import plan_training
from recsys_core.step_runner import JobContext, main_for

log = logging.getLogger(__name__)

READ_ROWS = 4_000_000  # interactions per chunk of examples


def training_features(ctx: JobContext) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(user features, item features) sorted by id, the held-out users' features replaced by the ones
    computed without their held-out rows (no target leakage)."""
    users = ctx.lake.read_table(L.USER_FEATURES, ctx.ds).to_pandas()
    held_users = ctx.lake.read_table(L.HOLDOUT_USER_FEATURES, ctx.ds).to_pandas()
    items = ctx.lake.read_table(L.ITEM_FEATURES, ctx.ds).to_pandas()
    users = pd.concat(
        [users[~users[C.USER_ID].isin(held_users[C.USER_ID])], held_users], ignore_index=True
    )
    return (
        users.sort_values(C.USER_ID, kind="stable").reset_index(drop=True),
        items.sort_values(C.ITEM_ID, kind="stable").reset_index(drop=True),
    )


def write_training_examples(
    ctx: JobContext, users: pd.DataFrame, items: pd.DataFrame
) -> tuple[Path, int, int]:
    """Every interaction of ds outside the held-out slice as examples (negatives included), in the lake.
    Returns the file, its rows and the interactions read."""
    interactions = pads.dataset(ctx.input_path(C.INTERACTIONS))
    held = ctx.lake.read_table(L.HOLDOUT, ctx.ds, [C.USER_ID, C.ITEM_ID]).to_pandas()
    cfg = ctx.config.model
    chunks = example_chunks(
        lambda: interactions.to_batches(
            columns=[C.USER_ID, C.ITEM_ID, C.RATING], batch_size=READ_ROWS
        ),
        users[C.USER_ID].to_numpy(),
        items[C.ITEM_ID].to_numpy(),
        cfg,
        exclude=held,
    )
    with ctx.lake.writing(L.TRAINING_EXAMPLES, ctx.ds) as stage:
        rows = write_examples(chunks, stage / L.PART_FILE, cfg.validation_share, cfg.seed)
    path = ctx.lake.partition(L.TRAINING_EXAMPLES, ctx.ds) / L.PART_FILE
    return path, rows, interactions.count_rows()


def training_interactions(ctx: JobContext) -> pd.DataFrame:
    """Every interaction of ds outside the held-out slice, with its time (the softmax towers' input)."""
    columns = [C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP]
    interactions = ctx.read_input(C.INTERACTIONS, columns).to_pandas()
    held = ctx.lake.read_table(L.HOLDOUT, ctx.ds, [C.USER_ID, C.ITEM_ID]).to_pandas()
    return without_pairs(interactions, held)


def body(ctx: JobContext) -> dict:
    users, items = training_features(ctx)
    xu, xi, ucols, icols = feature_matrices(users, items)
    cfg = ctx.config.model
    tuning = None
    plan = None
    if cfg.mode == "softmax":
        train = training_interactions(ctx)
        plan = plan_training(ctx.models_dir, ctx.ds, cfg, ucols, icols)
        cfg = plan.cfg
        if cfg.tune:
            cfg, tuning = tune(users, items, train, cfg)
        model = fit_softmax_towers(users, items, train, cfg, plan.warm)
        model.meta["training"].update(
            reason=plan.reason, full_retrain_ds=model.meta["training"]["full_retrain_ds"] or ctx.ds
        )
        rows, interactions = model.meta["metrics"]["train_rows"], ctx.input_rows(C.INTERACTIONS)
        parent = np.frombuffer((plan.warm.version if plan.warm else "").encode(), np.uint8)
        columns = (train[c] for c in train.columns)
        version = model_version(ctx.ds, ctx.config, xu, xi, parent, *columns)
        written = {}
    else:
        path, rows, interactions = write_training_examples(ctx, users, items)
        model = fit_towers_on(xu, xi, ParquetExamples(path), cfg, ucols, icols)
        version = model_version(ctx.ds, ctx.config, xu, xi, files=(path,))
        written = {L.TRAINING_EXAMPLES: rows}
    model.meta.update(version=version, ds=ctx.ds, run_id=ctx.run_id)
    if tuning:
        model.meta["tuning"] = tuning
    saved = ctx.models_dir / version
    if (
        saved / MODEL_FILE
    ).exists():  # a rerun on the same inputs: keep the folder and its evaluations
        log.info("model %s already saved at %s: kept as it is", version, saved)
    else:
        model.save(saved)
    write_candidate(ctx.lake, ctx.ds, version, saved)
    metrics = model.meta["metrics"]
    return {
        "rows_in": {C.INTERACTIONS: interactions, C.USERS: len(users), C.ITEMS: len(items)},
        "rows_out": written,
        "training_examples": rows,
        "model_version": version,
        "model_mode": cfg.mode,
        **({"training": model.meta["training"]} if plan else {}),
        **({"tuning": {k: tuning[k] for k in ("chosen", "gain", "seconds")}} if tuning else {}),
        "final_loss": metrics["loss"][-1],
        **{k: v for k, v in metrics.items() if k.startswith("val_") and not isinstance(v, list)},
    }


if __name__ == "__main__":
    main_for("train_towers", body)
