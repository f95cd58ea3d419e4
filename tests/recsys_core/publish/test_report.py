"""The HTML run report shows every step, the model and its plots."""

import numpy as np

from recsys_core.publish.report import loss_plot, render, score_plot, write_report


def test_report_page_lists_steps_model_plots_and_links(tmp_path):
    steps = [
        {
            "step": "validate_inputs",
            "status": "success",
            "seconds": 1.5,
            "rows_in": {"users": 3},
            "rows_out": {"users": 3},
        },
        {"step": "publish", "status": "success", "seconds": 0.2},
    ]
    images = {
        "loss": loss_plot({"loss": [0.3, 0.2], "val_loss": [0.35, 0.25]}),
        "scores": score_plot(np.array([0.1, 0.5, 0.9])),
        "absent": None,
    }
    page = render(
        "2026-01-31", "run-1", steps, {"version": "m1"}, images, {"Data Docs": "/x/index.html"}
    )
    path = write_report(tmp_path / "r" / "report.html", page)
    text = path.read_text()
    assert "validate_inputs" in text and "publish" in text and "m1" in text and "run-1" in text
    assert text.count("data:image/png;base64,") == 2  # the absent plot is left out
    assert "file:///x/index.html" in text


def test_no_plot_without_data():
    assert loss_plot({}) is None and score_plot(np.array([])) is None
