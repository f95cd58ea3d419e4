"""The model gate: judge the new model on the held-out slice against the last blessed model, and pick the
one the rest of the run ranks with. The decision, its reason and both models' metrics are recorded."""

import datetime as dt

import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as pads

from recsys_core import columns as C
from recsys_core.errors import RecsysError
from recsys_core.io import layout as L
from recsys_core.io.lake import write_json_atomically
from recsys_core.model.gate import METRIC, Slice, decide, slice_metrics
from recsys_core.model.registry import bless_model, read_blessed, read_candidate, write_serving
from recsys_core.model.training_examples import without_pairs
from recsys_core.model.two_tower import TwoTowerModel
from recsys_core.step_runner import JobContext, main_for


def held_out_slice(ctx: JobContext) -> Slice:
    held = ctx.lake.read_table(L.HOLDOUT, ctx.ds, [C.USER_ID, C.ITEM_ID, C.RATING]).to_pandas()
    held_users = ctx.lake.read_table(L.HOLDOUT_USER_FEATURES, ctx.ds).to_pandas()
    items = ctx.lake.read_table(L.ITEM_FEATURES, ctx.ds).to_pandas()
    return Slice(held, held_users, items, seen_in_training(ctx, held))


def seen_in_training(ctx: JobContext, held: pd.DataFrame) -> pd.DataFrame:
    """(user_id, item_id, timestamp) the slice users interacted with outside the held-out rows: never
    recommended, and their histories. Only those users' interactions are read (a filter pushed down to
    the Parquet scan)."""
    users = pc.field(C.USER_ID).isin(held[C.USER_ID].unique())
    inter = pads.dataset(ctx.input_path(C.INTERACTIONS)).to_table(
        columns=[C.USER_ID, C.ITEM_ID, C.TIMESTAMP], filter=users
    )
    return without_pairs(inter.to_pandas(), held)


def body(ctx: JobContext) -> dict:
    candidate = read_candidate(ctx.lake, ctx.ds)
    data = held_out_slice(ctx)
    new_metrics = slice_metrics(TwoTowerModel.load(candidate["path"]), data)
    blessed = read_blessed(ctx.models_dir)
    old_metrics, note = None, ""
    if blessed and blessed["version"] == candidate["version"]:
        old_metrics = new_metrics  # a rerun of the same inputs trained the same model
    elif blessed:
        try:
            old_metrics = slice_metrics(TwoTowerModel.load(blessed["path"]), data)
        except RecsysError as exc:  # e.g. today's features have a genre the blessed model never saw
            note = f"the blessed model {blessed['version']} cannot be evaluated: {exc}; "
    gate = ctx.config.evaluation
    bless, reason = decide(
        new_metrics, old_metrics, gate.bless_margin, blessed is not None, gate.bless_unchecked
    )
    moved = False
    if bless:  # compare-and-swap under the registry's lock: never over a model of a later ds
        moved, refused = bless_model(
            ctx.models_dir,
            {**candidate, "ds": ctx.ds, "metrics": new_metrics},
            blessed["version"] if blessed else None,
        )
        # a model that passed the gate ranks this run even when the pointer stays (a backfill of an
        # older ds, or another gate that moved it meanwhile): later nights compare against the pointer
        reason += f"; {refused}; this run still ranks with the new model" if refused else ""
    reason = note + reason
    chosen = candidate if bless else {"version": blessed["version"], "path": blessed["path"]}
    record = {
        "ds": ctx.ds,
        "run_id": ctx.run_id,
        "candidate_version": candidate["version"],
        "blessed_version": blessed["version"] if blessed else None,
        "serving_version": chosen["version"],
        "blessed": bless,
        "registry_updated": moved,
        "reason": reason,
        "metric": METRIC,
        "margin": ctx.config.evaluation.bless_margin,
        "candidate_metrics": new_metrics,
        "blessed_metrics": old_metrics,
        "held_out_rows": len(data.held_out),
        "evaluated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    # stored with the model version (every run that judged it) and with the run's partition
    ctx.lake.write_json(record, L.MODEL_EVALUATION, ctx.ds, L.EVALUATION_FILE)
    history = ctx.work.model_evaluation(candidate["version"], ctx.ds)
    history.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(history, record)
    write_serving(ctx.lake, ctx.ds, chosen)
    return {
        "rows_in": {L.HOLDOUT: len(data.held_out)},
        "rows_out": {},
        "model_version": chosen["version"],
        "candidate_version": candidate["version"],
        "blessed": bless,
        "reason": reason,
        f"candidate_{METRIC}": new_metrics[METRIC] if new_metrics else None,
        f"blessed_{METRIC}": old_metrics[METRIC] if old_metrics else None,
    }


if __name__ == "__main__":
    main_for("gate_model", body)
