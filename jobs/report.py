"""After publishing: the run report into the warehouse (run_report) and as HTML under <work>/reports/."""

import base64
import json

from jobs import STEPS
from jobs.common import STEPS_DATASET, JobContext, main_for
from jobs.evaluate_model import EVALUATION_FILE
from jobs.train_towers import MODEL_REF_FILE
from jobs.validate_inputs import VALIDATION_DATASET
from recsys_core import columns as C
from recsys_core.report import loss_plot, render, score_plot, write_report
from recsys_core.validation import DOCS_INDEX
from recsys_core.warehouse import open_warehouse

# where `recsys evaluate --plot` puts the retrieval-size tradeoff curve in the README's example
TRADEOFF_PNG = ("evaluation", "tradeoff.png")


def report_path(ctx: JobContext):
    return ctx.work_dir / "reports" / f"ds={ctx.ds}" / "report.html"


def body(ctx: JobContext) -> dict:
    folder = ctx.lake.partition(STEPS_DATASET, ctx.ds)
    steps = [json.loads((folder / f"{s}.json").read_text()) for s in STEPS if (folder / f"{s}.json").exists()]
    ref = ctx.lake.read_json(C.MODEL_REF, ctx.ds, MODEL_REF_FILE)
    meta = json.loads((ctx.models_dir / ref["version"] / "meta.json").read_text())
    metrics = meta.get("metrics", {})
    scores = ctx.lake.read_table(C.RECOMMENDATIONS, ctx.ds, [C.SCORE]).column(C.SCORE).to_numpy()
    model = {"version": ref["version"], "mode": meta.get("mode", "regression"),
             "training rows": metrics.get("train_rows"), "epochs": len(metrics.get("loss", [])),
             **{k: v for k, v in metrics.items() if k.startswith("val_") and not isinstance(v, list)}}
    gate = ctx.lake.partition(C.MODEL_EVALUATION, ctx.ds) / EVALUATION_FILE
    if gate.is_file():
        g = json.loads(gate.read_text())
        model["gate"] = ("new model blessed" if g["blessed"] else "new model rejected") + f": {g['reason']}"
        model["trained this run"] = g["candidate_version"]
    images = {"training loss per epoch": loss_plot(metrics), "score distribution": score_plot(scores)}
    tradeoff = ctx.work_dir.joinpath(*TRADEOFF_PNG)
    if tradeoff.is_file():
        images["retrieval size tradeoff"] = base64.b64encode(tradeoff.read_bytes()).decode()
    page = render(ctx.ds, ctx.run_id, steps, model, images,
                  {"Great Expectations Data Docs": str(ctx.lake.partition(VALIDATION_DATASET, ctx.ds) / DOCS_INDEX),
                   "model directory": ref["path"]})
    path = write_report(report_path(ctx), page)
    open_warehouse(ctx.warehouse_url).record_run(ctx.ds, ctx.run_id, steps)
    return {"rows_in": {"steps": len(steps)}, "rows_out": {"run_report": len(steps)}, "report": str(path)}


if __name__ == "__main__":
    main_for("report", body)
