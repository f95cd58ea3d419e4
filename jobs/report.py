"""After publishing: the run report into the warehouse (run_report) and as HTML under <work>/reports/."""

import base64
import json

from jobs import STEPS
from recsys_core import columns as C
from recsys_core.io import layout as L
from recsys_core.model.gate import METRIC
from recsys_core.model.registry import read_serving
from recsys_core.publish.report import gate_trend_plot, loss_plot, render, score_plot, write_report
from recsys_core.publish.warehouse import open_warehouse
from recsys_core.step_runner import JobContext, main_for


def gate_history(ctx: JobContext) -> list[dict]:
    """The gate's record of every night up to ds that has one, in ds order."""
    folder = ctx.lake.root / L.MODEL_EVALUATION
    nights = sorted(p.name.split("=", 1)[1] for p in folder.glob("ds=*")) if folder.is_dir() else []
    records = []
    for ds in nights:
        path = ctx.lake.partition(L.MODEL_EVALUATION, ds) / L.EVALUATION_FILE
        if ds <= ctx.ds and path.is_file():
            records.append(json.loads(path.read_text()))
    return records


def body(ctx: JobContext) -> dict:
    records = [ctx.work.step_record(ctx.ds, s) for s in STEPS]
    steps = [json.loads(r.read_text()) for r in records if r.exists()]
    ref = read_serving(ctx.lake, ctx.ds)
    meta = json.loads((ctx.models_dir / ref["version"] / L.MODEL_META_FILE).read_text())
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
    images = {
        "training loss per epoch": loss_plot(metrics),
        "score distribution": score_plot(scores),
        "model gate across nights": gate_trend_plot(gate_history(ctx), METRIC),
    }
    tradeoff = ctx.work.tradeoff_plot
    if tradeoff.is_file():
        images["retrieval size tradeoff"] = base64.b64encode(tradeoff.read_bytes()).decode()
    page = render(
        ctx.ds,
        ctx.run_id,
        steps,
        model,
        images,
        {
            "Great Expectations Data Docs": str(ctx.work.data_docs(ctx.ds)),
            "model directory": ref["path"],
        },
    )
    path = write_report(ctx.work.report(ctx.ds), page)
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
