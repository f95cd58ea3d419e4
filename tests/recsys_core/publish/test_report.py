"""The HTML run report shows every step, the model and its plots."""

import base64

import numpy as np
import pytest

from recsys_core.publish.report import (
    gate_trend_plot,
    loss_plot,
    render,
    score_plot,
    write_report,
)


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


def night(ds, candidate, before, blessed, serving):
    """The gate's evaluation.json of one night (the fields gate_trend_plot reads, and a few more)."""
    return {
        "ds": ds,
        "serving_version": serving,
        "blessed": blessed,
        "metric": "ndcg@10",
        "candidate_metrics": None if candidate is None else {"ndcg@10": candidate, "users": 9},
        "blessed_metrics": None if before is None else {"ndcg@10": before, "users": 9},
    }


def png_bytes(encoded: str) -> bytes:
    data = base64.b64decode(encoded, validate=True)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return data


def test_gate_trend_plot_is_none_without_a_night_that_has_candidate_metrics():
    assert gate_trend_plot([], "ndcg@10") is None
    # no relevant held-out item that night: the gate recorded no metrics
    no_metrics = night("2026-01-01", None, None, False, "m0")
    assert gate_trend_plot([no_metrics, {"ds": "2026-01-02"}], "ndcg@10") is None


@pytest.mark.parametrize(
    "records",
    [
        # the first model is blessed (nothing to compare with), the next one rejected
        [
            night("2026-01-01", 0.20, None, True, "m1"),
            night("2026-01-02", 0.18, 0.20, False, "m1"),
        ],
        # blessed, rejected, blessed again: the serving version changes twice; a night without
        # metrics in between is left out
        [
            night("2026-01-01", 0.20, None, True, "m1"),
            night("2026-01-02", 0.19, 0.20, False, "m1"),
            night("2026-01-03", None, None, False, "m1"),
            night("2026-01-04", 0.24, 0.20, True, "m3"),
        ],
        # never blessed: no ring to draw
        [
            night("2026-01-01", 0.10, 0.20, False, "m0"),
            night("2026-01-02", 0.12, 0.20, False, "m0"),
        ],
    ],
)
def test_gate_trend_plot_draws_the_nights_as_a_base64_png(records):
    encoded = gate_trend_plot(records, "ndcg@10")
    assert isinstance(encoded, str)
    assert len(png_bytes(encoded)) > 1000


def test_gate_trend_plot_fits_on_the_report_page(tmp_path):
    records = [
        night("2026-01-01", 0.2, None, True, "m1"),
        night("2026-01-02", 0.3, 0.2, True, "m2"),
    ]
    images = {"model gate across nights": gate_trend_plot(records, "ndcg@10")}
    page = render("2026-01-02", "run-1", [], {"version": "m2"}, images, {})
    text = write_report(tmp_path / "report.html", page).read_text()
    assert "model gate across nights" in text and text.count("data:image/png;base64,") == 1
