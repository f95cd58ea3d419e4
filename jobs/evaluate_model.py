"""Step 5: judge the new model on the held-out slice against the last blessed model, and pick the one
the rest of the run ranks with. The decision, its reason and both models' metrics are recorded."""

import datetime as dt
import json

import pandas as pd
import pyarrow.compute as pc
import pyarrow.dataset as pads

from jobs.common import JobContext, main_for
from jobs.train_towers import CANDIDATE_REF_FILE, MODEL_REF_FILE
from recsys_core import columns as C
from recsys_core.errors import RecsysError
from recsys_core.gate import METRIC, Slice, decide, read_blessed, slice_metrics, write_blessed
from recsys_core.towers import TwoTowerModel

EVALUATION_FILE = "evaluation.json"


def held_out_slice(ctx: JobContext) -> Slice:
    held = ctx.lake.read_table(C.HOLDOUT, ctx.ds, [C.USER_ID, C.ITEM_ID, C.RATING]).to_pandas()
    held_users = ctx.lake.read_table(C.HOLDOUT_USER_FEATURES, ctx.ds).to_pandas()
    items = ctx.lake.read_table(C.ITEM_FEATURES, ctx.ds).to_pandas()
    return Slice(held, held_users, items, seen_in_training(ctx, held))


def seen_in_training(ctx: JobContext, held: pd.DataFrame) -> pd.DataFrame:
    """(user_id, item_id) the slice users interacted with outside the held-out rows: never recommended.
    Only those users' interactions are read (a filter pushed down to the Parquet scan)."""
    users = pc.field(C.USER_ID).isin(held[C.USER_ID].unique())
    inter = pads.dataset(ctx.input_path(C.INTERACTIONS)).to_table(columns=[C.USER_ID, C.ITEM_ID], filter=users)
    marked = inter.to_pandas().merge(held[[C.USER_ID, C.ITEM_ID]], how="left", indicator=True)
    return marked.loc[marked["_merge"] == "left_only", [C.USER_ID, C.ITEM_ID]].reset_index(drop=True)


def body(ctx: JobContext) -> dict:
    candidate = ctx.lake.read_json(C.MODEL_REF, ctx.ds, CANDIDATE_REF_FILE)
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
    bless, reason = decide(new_metrics, old_metrics, ctx.config.evaluation.bless_margin)
    reason = note + reason
    chosen = candidate if bless else {"version": blessed["version"], "path": blessed["path"]}
    record = {
        "ds": ctx.ds, "run_id": ctx.run_id, "candidate_version": candidate["version"],
        "blessed_version": blessed["version"] if blessed else None, "serving_version": chosen["version"],
        "blessed": bless, "reason": reason, "metric": METRIC, "margin": ctx.config.evaluation.bless_margin,
        "candidate_metrics": new_metrics, "blessed_metrics": old_metrics,
        "held_out_rows": len(data.held_out), "evaluated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    # stored with the model version (every run that judged it) and with the run's partition
    ctx.lake.write_json(record, C.MODEL_EVALUATION, ctx.ds, EVALUATION_FILE)
    history = ctx.models_dir / candidate["version"] / "evaluations"
    history.mkdir(parents=True, exist_ok=True)
    (history / f"ds={ctx.ds}.json").write_text(json.dumps(record, indent=2))
    if bless:
        write_blessed(ctx.models_dir, {**candidate, "ds": ctx.ds, "metrics": new_metrics})
    ctx.lake.write_json(chosen, C.MODEL_REF, ctx.ds, MODEL_REF_FILE)
    return {
        "rows_in": {C.HOLDOUT: len(data.held_out)},
        "rows_out": {},
        "model_version": chosen["version"],
        "candidate_version": candidate["version"],
        "blessed": bless,
        "reason": reason,
        f"candidate_{METRIC}": new_metrics[METRIC] if new_metrics else None,
        f"blessed_{METRIC}": old_metrics[METRIC] if old_metrics else None,
    }


if __name__ == "__main__":
    main_for("evaluate_model", body)
