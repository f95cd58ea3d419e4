"""After publishing: the run report into the warehouse (run_report) and as HTML under <work>/reports/."""

import base64
import json
from pathlib import Path

from jobs import STEPS
from recsys_core import columns as C
from recsys_core.io import layout as L
from recsys_core.model.gate import METRIC
from recsys_core.model.registry import read_serving
from recsys_core.publish.report import (
    NIGHTS_SHOWN,
    gate_trend_plot,
    loss_plot,
    night_summary,
    render,
    rows_published_plot,
    score_plot,
    step_seconds_plot,
    write_report_folder,
)
from recsys_core.publish.warehouse import open_warehouse
from recsys_core.step_runner import JobContext, main_for

DATA_DOCS = "data_docs"  # beside report.html: the run's Great Expectations Data Docs site
MODEL_META = "model_meta.json"  # beside report.html: the serving model's meta.json


def nights_up_to(folder: Path, ds: str) -> list[str]:
    """The ds of every `ds=` partition in folder up to ds, in order."""
    nights = sorted(p.name.split("=", 1)[1] for p in folder.glob("ds=*")) if folder.is_dir() else []
    return [night for night in nights if night <= ds]


def recorded_steps(ctx: JobContext, ds: str) -> list[dict]:
    """The step records of ds, in the DAG's order, of the steps that have one."""
    paths = [ctx.work.step_record(ds, step) for step in STEPS]
    return [json.loads(path.read_text()) for path in paths if path.exists()]


def gate_history(ctx: JobContext) -> list[dict]:
    """The gate's record of every night up to ds that has one, in ds order."""
    records = []
    for ds in nights_up_to(ctx.lake.root / L.MODEL_EVALUATION, ctx.ds):
        path = ctx.lake.partition(L.MODEL_EVALUATION, ds) / L.EVALUATION_FILE
        if path.is_file():
            records.append(json.loads(path.read_text()))
    return records


def night_summaries(ctx: JobContext) -> list[dict]:
    """The last NIGHTS_SHOWN nights up to ds that have step records, for the trend plots."""
    nights = nights_up_to(ctx.work.step_records(ctx.ds).parent, ctx.ds)[-NIGHTS_SHOWN:]
    return [night_summary(ds, recorded_steps(ctx, ds)) for ds in nights]


def body(ctx: JobContext) -> dict:
    steps = recorded_steps(ctx, ctx.ds)
    ref = read_serving(ctx.lake, ctx.ds)
    meta_path = ctx.models_dir / ref["version"] / L.MODEL_META_FILE
    meta = json.loads(meta_path.read_text())
    metrics = meta.get("metrics", {})
    scores = ctx.lake.read_table(L.RECOMMENDATIONS, ctx.ds, [C.SCORE]).column(C.SCORE).to_numpy()
    model = {
        "version": ref["version"],
        "mode": meta.get("mode"),
        "training rows": metrics.get("train_rows"),
        "epochs": len(metrics.get("loss", [])),
        **{k: v for k, v in metrics.items() if k.startswith("val_") and not isinstance(v, list)},
    }
    gate = ctx.lake.partition(L.MODEL_EVALUATION, ctx.ds) / L.EVALUATION_FILE
    if gate.is_file():
        g = json.loads(gate.read_text())
        model["gate"] = (
            "new model blessed" if g["blessed"] else "new model rejected"
        ) + f": {g['reason']}"
        model["trained this run"] = g["candidate_version"]
    this_run = {
        "training loss per epoch": loss_plot(metrics),
        "score distribution": score_plot(scores),
    }
    tradeoff = ctx.work.tradeoff_plot
    if tradeoff.is_file():
        this_run["retrieval size tradeoff"] = base64.b64encode(tradeoff.read_bytes()).decode()
    nights = night_summaries(ctx)
    across = {
        "model gate across nights": gate_trend_plot(gate_history(ctx), METRIC),
        "rows published across nights": rows_published_plot(nights),
        "step times across nights": step_seconds_plot(nights, STEPS),
    }
    # copied beside the page, linked relatively: the report folder can be moved or served whole
    attachments = {DATA_DOCS: ctx.work.data_docs(ctx.ds).parent, MODEL_META: meta_path}
    attachments = {name: path for name, path in attachments.items() if path.exists()}
    links = {
        "Great Expectations Data Docs (validation of this run)": f"{DATA_DOCS}/index.html",
        f"model {ref['version']}: its settings and training metrics": MODEL_META,
    }
    page = render(
        ctx.ds,
        ctx.run_id,
        steps,
        model,
        {"This run": this_run, "Across the nights": across},
        {name: href for name, href in links.items() if href.split("/")[0] in attachments},
    )
    path = write_report_folder(ctx.work.report(ctx.ds), page, attachments)
    open_warehouse(ctx.warehouse_url, ctx.config.warehouse.retries).record_run(
        ctx.ds, ctx.run_id, steps
    )
    return {
        "rows_in": {"steps": len(steps)},
        "rows_out": {"run_report": len(steps)},
        "report": str(path),
    }


if __name__ == "__main__":
    main_for("report", body)
