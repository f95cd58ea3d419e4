"""The HTML run report shows every step, the model and its plots."""

import base64

import numpy as np
import pytest

from recsys_core.publish.report import (
    gate_trend_plot,
    loss_plot,
    night_summary,
    render,
    rows_published_plot,
    score_plot,
    step_seconds_plot,
    write_report,
)


def test_report_page_lists_steps_model_plots_and_links(tmp_path):
    steps = [
        {
            "step": "validate_inputs",
            "status": "success",
            "seconds": 1.5,
            "started_at": "2026-01-31T02:00:00+00:00",
            "rows_in": {"users": 1200},
            "rows_out": {"users": 1200, "items": 300},
        },
        {"step": "publish", "status": "success", "seconds": 0.2},
    ]
    plots = {
        "This run": {
            "loss": loss_plot({"loss": [0.3, 0.2], "val_loss": [0.35, 0.25]}),
            "scores": score_plot(np.array([0.1, 0.5, 0.9])),
            "absent": None,
        },
        "Nothing yet": {"absent too": None},
    }
    page = render(
        "2026-01-31",
        "run-1",
        steps,
        {"version": "m1", "val_rmse": 0.812345678},
        plots,
        {"Data Docs": "data_docs/index.html"},
    )
    text = write_report(tmp_path / "r" / "report.html", page).read_text()
    assert "validate_inputs" in text and "publish" in text and "m1" in text and "run-1" in text
    assert text.count("data:image/png;base64,") == 2  # the absent plots are left out ...
    assert "This run" in text and "Nothing yet" not in text  # ... and a section with none of them
    assert "<li>users: 1,200</li><li>items: 300</li>" in text  # rows as readable lists, not JSON
    assert "2026-01-31 02:00:00" in text and ">0.8123<" in text
    assert '<a href="data_docs/index.html">Data Docs</a>' in text and "file://" not in text


def test_every_value_on_the_page_is_escaped():
    """Values come from records, configs and errors: none may open a tag or an attribute."""
    hostile = "<script>alert(1)</script>\"'&"
    steps = [
        {
            "step": "train_towers",
            "status": "failed",
            "seconds": 2.0,
            "rows_out": {hostile: 1},
            "error": f"ValueError: {hostile}",
        }
    ]
    page = render(
        hostile, hostile, steps, {hostile: hostile}, {hostile: {hostile: None}}, {hostile: hostile}
    )
    assert "<script>" not in page and "alert(1)</script>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6
    assert 'href="&lt;script&gt;' in page  # the link's href too


def test_trend_plots_of_rows_published_and_step_times_across_nights():
    nights = [
        night_summary(
            f"2026-01-0{day}",
            [
                {"step": "train_towers", "status": "success", "seconds": 30.0 + day},
                {
                    "step": "publish",
                    "status": "success" if day != 2 else "failed",
                    "seconds": 2.0,
                    "rows_out": {"recommendations": 1000 * day},
                },
            ],
        )
        for day in (1, 2, 3)
    ]
    assert [n["published"] for n in nights] == [1000, None, 3000]  # a failed publish published none
    assert nights[0]["seconds"] == {"train_towers": 31.0, "publish": 2.0}
    assert len(png_bytes(rows_published_plot(nights))) > 1000
    assert len(png_bytes(step_seconds_plot(nights, ("train_towers", "publish")))) > 1000
    assert rows_published_plot([night_summary("2026-01-01", [])]) is None
    assert step_seconds_plot([night_summary("2026-01-01", [])], ("publish",)) is None


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
    images = {
        "Across the nights": {"model gate across nights": gate_trend_plot(records, "ndcg@10")}
    }
    page = render("2026-01-02", "run-1", [], {"version": "m2"}, images, {})
    text = write_report(tmp_path / "report.html", page).read_text()
    assert "model gate across nights" in text and text.count("data:image/png;base64,") == 1
