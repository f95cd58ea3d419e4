"""The human-readable run report: one HTML file with the steps, the model's training curve and score plots."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import numpy as np

PLOT_SIZE = (5, 3)  # inches: small figures, several side by side on the page
PLOT_DPI = 90  # the PNGs are embedded in the HTML as base64: small files keep the page light
SCORE_BINS = 50


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PLOT_DPI, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def loss_plot(metrics: dict) -> str | None:
    """Training (and validation) loss per epoch, as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not metrics.get("loss"):
        return None
    fig, ax = plt.subplots(figsize=PLOT_SIZE)
    epochs = np.arange(1, len(metrics["loss"]) + 1)
    ax.plot(epochs, metrics["loss"], marker="o", label="training")
    if metrics.get("val_loss"):
        ax.plot(epochs, metrics["val_loss"], marker="o", label="validation")
    ax.set(xlabel="epoch", ylabel="loss (MSE or cross-entropy)", title="Training loss")
    ax.legend()
    png = _png(fig)
    plt.close(fig)
    return png


def gate_trend_plot(records: list[dict], metric: str) -> str | None:
    """The model gate's `metric` night by night (records: the gate's evaluation.json of each ds, in ds
    order): the model trained that night and the model it was compared with, a ring where the night's
    model was blessed, and the serving version written where it changed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nights = [r for r in records if r.get("candidate_metrics")]
    if not nights:
        return None
    days = [r["ds"] for r in nights]
    x = np.arange(len(nights))
    fig, ax = plt.subplots(figsize=(max(PLOT_SIZE[0], 0.5 * len(nights)), PLOT_SIZE[1]))
    ax.plot(
        x, [r["candidate_metrics"][metric] for r in nights], marker="o", label="trained that night"
    )
    before = [
        (i, r["blessed_metrics"][metric]) for i, r in enumerate(nights) if r.get("blessed_metrics")
    ]
    if before:
        ax.plot(
            *zip(*before, strict=True), marker="s", linestyle="--", label="blessed model before"
        )
    blessed = [i for i, r in enumerate(nights) if r.get("blessed")]
    ax.scatter(
        blessed,
        [nights[i]["candidate_metrics"][metric] for i in blessed],
        s=140,
        facecolors="none",
        edgecolors="tab:green",
        label="blessed",
    )
    serving = None
    for i, r in enumerate(nights):
        if r.get("serving_version") != serving:
            serving = r.get("serving_version")
            ax.annotate(
                str(serving),
                (i, r["candidate_metrics"][metric]),
                textcoords="offset points",
                xytext=(0, 8),
                ha="center",
                fontsize=6,
                rotation=20,
            )
    ax.set_xticks(x, days, rotation=45, ha="right", fontsize=7)
    ax.set(ylabel=f"{metric} on the held-out slice", title="Model gate night by night")
    ax.legend(fontsize=7)
    png = _png(fig)
    plt.close(fig)
    return png


def score_plot(scores: np.ndarray) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(scores) == 0:
        return None
    fig, ax = plt.subplots(figsize=PLOT_SIZE)
    ax.hist(scores, bins=SCORE_BINS)
    ax.set(xlabel="score (v_u . v_m)", ylabel="recommendations", title="Score distribution")
    png = _png(fig)
    plt.close(fig)
    return png


def render(
    ds: str,
    run_id: str,
    steps: list[dict],
    model: dict,
    images: dict[str, str | None],
    links: dict[str, str],
) -> str:
    """The report page; images are base64 PNGs (None: not available), links are name -> file path."""
    rows = "".join(
        f"<tr><td>{html.escape(s['step'])}</td><td>{html.escape(s.get('status', '?'))}</td>"
        f"<td>{s.get('started_at', '')}</td><td>{s.get('seconds', '')}</td>"
        f"<td>{html.escape(json.dumps(s.get('rows_in', {})))}</td>"
        f"<td>{html.escape(json.dumps(s.get('rows_out', {})))}</td></tr>"
        for s in steps
    )
    figures = "".join(
        f"<figure><img alt='{html.escape(name)}' src='data:image/png;base64,{png}'/>"
        f"<figcaption>{html.escape(name)}</figcaption></figure>"
        for name, png in images.items()
        if png
    )
    anchors = "".join(
        f"<li><a href='file://{html.escape(p)}'>{html.escape(n)}</a></li>" for n, p in links.items()
    )
    model_rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in model.items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>recsys_nightly {ds}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}figure{{display:inline-block;margin:1em}}</style>
</head><body><h1>recsys_nightly, ds {html.escape(ds)}</h1><p>run {html.escape(run_id)}</p>
<h2>Steps</h2><table><tr><th>step</th><th>status</th><th>started (UTC)</th><th>seconds</th>
<th>rows in</th><th>rows out</th></tr>{rows}</table>
<h2>Model</h2><table>{model_rows}</table><h2>Plots</h2>{figures}<h2>Links</h2><ul>{anchors}</ul></body></html>"""


def write_report(path: Path, page: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page)
    tmp.replace(path)
    return path
