"""The report step: run_report rows in the warehouse and an HTML page, with the tradeoff plot when present."""

import json

import numpy as np
import pyarrow as pa

from jobs import report
from recsys_core.io import layout
from recsys_core.io.lake import Lake
from recsys_core.publish.report import score_plot
from recsys_core.publish.warehouse import open_warehouse
from recsys_core.step_runner import run_job

DS = "2026-01-31"


def make_lake(work):
    lake = Lake(work / "lake")
    for step in ("validate_inputs", "publish"):
        lake.write_json(
            {
                "step": step,
                "status": "success",
                "seconds": 1.0,
                "started_at": "2026-01-31T02:00:00+00:00",
                "rows_out": {"x": 3},
            },
            layout.STEP_RECORDS,
            DS,
            f"{step}.json",
        )
    (work / "models" / "m1").mkdir(parents=True)
    (work / "models" / "m1" / "meta.json").write_text(
        json.dumps(
            {
                "mode": "regression",
                "metrics": {"loss": [0.3, 0.2], "val_loss": [0.4, 0.3], "val_rmse": 0.8},
            }
        )
    )
    lake.write_json(
        {"version": "m1", "path": str(work / "models" / "m1")}, "model_ref", DS, "model.json"
    )
    lake.write_table(pa.table({"score": np.linspace(-0.5, 0.9, 50)}), "recommendations", DS)
    docs = layout.WorkDir(work.resolve()).data_docs(DS)  # the Data Docs site validation wrote
    docs.parent.mkdir(parents=True)
    docs.write_text("<html>validation results</html>")
    return lake


def run(work):
    url = f"duckdb://{work}/wh.duckdb"
    code = run_job("report", report.body, ["--ds", DS, "--work", str(work), "--warehouse", url])
    return code, url, (work / "reports" / f"ds={DS}" / "report.html")


def test_report_writes_the_page_and_the_run_report_rows(tmp_path):
    make_lake(tmp_path)
    code, url, page = run(tmp_path)
    assert code == 0
    html = page.read_text()
    # training loss, scores, and the step times across the (one) night so far
    assert html.count("data:image/png;base64,") == 3 and "val_rmse" in html and "Data Docs" in html
    # the links are relative to the page and resolve in a copy of its folder moved anywhere
    import re
    import shutil

    moved = shutil.copytree(page.parent, tmp_path / "elsewhere")
    hrefs = re.findall(r'href="([^"]+)"', html)
    assert hrefs == ["data_docs/index.html", "model_meta.json"]
    assert (moved / hrefs[0]).read_text() == "<html>validation results</html>"
    assert json.loads((moved / hrefs[1]).read_text())["metrics"]["val_rmse"] == 0.8
    rows = open_warehouse(url).query("SELECT step, status, rows_out FROM run_report ORDER BY step")
    assert list(rows["step"]) == ["publish", "validate_inputs"] and set(rows["status"]) == {
        "success"
    }
    assert json.loads(rows["rows_out"][0]) == {"x": 3}
    code, _, _ = run(tmp_path)  # a rerun replaces the run's rows
    assert len(open_warehouse(url).query("SELECT * FROM run_report")) == 2


def test_the_tradeoff_curve_is_embedded_when_the_experiment_wrote_one(tmp_path):
    import base64

    make_lake(tmp_path)
    folder = (
        tmp_path / "evaluation"
    )  # <work>/evaluation/tradeoff.png, as `recsys evaluate --plot` in the README
    folder.mkdir(parents=True)
    (folder / "tradeoff.png").write_bytes(base64.b64decode(score_plot(np.array([0.1, 0.2]))))
    code, _, page = run(tmp_path)
    assert code == 0 and page.read_text().count("data:image/png;base64,") == 4
    assert "retrieval size tradeoff" in page.read_text()


def test_the_model_gate_decision_is_on_the_page(tmp_path):
    lake = make_lake(tmp_path)
    lake.write_json(
        {
            "blessed": False,
            "candidate_version": "m2",
            "reason": "ndcg@10 0.0100 is worse than the "
            "blessed model's 0.2000 by more than the margin 0.01: ranking with the blessed model",
        },
        "model_evaluation",
        DS,
        "evaluation.json",
    )
    code, _, page = run(tmp_path)
    text = page.read_text()
    assert (
        code == 0
        and "new model rejected" in text
        and "ranking with the blessed model" in text
        and "m2" in text
    )
