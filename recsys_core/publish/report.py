"""The human-readable run report: one HTML file with the steps, the model's training curve and score plots."""

from __future__ import annotations

import base64
import io
import shutil
import uuid
from pathlib import Path

import numpy as np

PLOT_SIZE = (5, 3)  # inches: small figures, several side by side on the page
PLOT_DPI = 90  # the PNGs are embedded in the HTML as base64: small files keep the page light
SCORE_BINS = 50
TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"
NIGHTS_SHOWN = 30  # the trend plots' last nights


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


def rows_published_plot(nights: list[dict]) -> str | None:
    """Recommendations published night by night (nights: `night_summary` records in ds order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [n for n in nights if n.get("published") is not None]
    if not shown:
        return None
    fig, ax = plt.subplots(figsize=(max(PLOT_SIZE[0], 0.5 * len(shown)), PLOT_SIZE[1]))
    x = np.arange(len(shown))
    ax.plot(x, [n["published"] for n in shown], marker="o")
    ax.set_xticks(x, [n["ds"] for n in shown], rotation=45, ha="right", fontsize=7)
    ax.set(ylabel="recommendations published", title="Rows published night by night")
    ax.set_ylim(bottom=0)
    png = _png(fig)
    plt.close(fig)
    return png


def step_seconds_plot(nights: list[dict], steps: tuple[str, ...]) -> str | None:
    """Each step's seconds night by night, stacked (nights: `night_summary` records in ds order)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [n for n in nights if n.get("seconds")]
    if not shown:
        return None
    fig, ax = plt.subplots(figsize=(max(PLOT_SIZE[0] + 2, 0.5 * len(shown)), PLOT_SIZE[1] + 1))
    x = np.arange(len(shown))
    bottom = np.zeros(len(shown))
    for step in steps:
        seconds = np.array([n["seconds"].get(step, 0.0) for n in shown])
        if seconds.any():
            ax.bar(x, seconds, bottom=bottom, label=step)
            bottom += seconds
    ax.set_xticks(x, [n["ds"] for n in shown], rotation=45, ha="right", fontsize=7)
    ax.set(ylabel="seconds", title="Step times night by night")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    png = _png(fig)
    plt.close(fig)
    return png


def night_summary(ds: str, records: list[dict]) -> dict:
    """One night for the trend plots, from its step records: each step's seconds and the
    recommendations published (None when publish did not succeed)."""
    publish = next((r for r in records if r.get("step") == "publish"), {})
    published = (publish.get("rows_out") or {}).get("recommendations")
    return {
        "ds": ds,
        "seconds": {r["step"]: float(r["seconds"]) for r in records if "seconds" in r},
        "published": published if publish.get("status") == "success" else None,
    }


def _shown(value) -> str:
    """A count with thousands separators, a float to 4 significant digits, anything else as text."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _step_view(record: dict) -> dict:
    seconds = record.get("seconds")
    return {
        "step": record["step"],
        "status": record.get("status", "?"),
        "started": str(record.get("started_at", "")).replace("T", " ").removesuffix("+00:00"),
        "seconds": f"{seconds:,.1f}" if isinstance(seconds, int | float) else "",
        "rows_in": [(k, _shown(v)) for k, v in (record.get("rows_in") or {}).items()],
        "rows_out": [(k, _shown(v)) for k, v in (record.get("rows_out") or {}).items()],
        "error": record.get("error") if record.get("status") != "success" else None,
    }


def render(
    ds: str,
    run_id: str,
    steps: list[dict],
    model: dict,
    plots: dict[str, dict[str, str | None]],
    links: dict[str, str],
) -> str:
    """The report page, from templates/report.html.j2 with every value escaped: the steps' records,
    the model's facts, `plots` (section -> name -> base64 PNG, None: not available, left out) and
    `links` (name -> href, relative to the report)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    sections = [
        (title, [{"name": n, "png": png} for n, png in images.items() if png])
        for title, images in plots.items()
    ]
    return env.get_template(TEMPLATE).render(
        ds=ds,
        run_id=run_id,
        steps=[_step_view(r) for r in steps],
        model=[(k, _shown(v)) for k, v in model.items()],
        plots=[(title, figures) for title, figures in sections if figures],
        links=list(links.items()),
    )


def write_report_folder(path: Path, page: str, attachments: dict[str, Path]) -> Path:
    """The page at `path` and, beside it, a copy of each attachment (a file or a folder) under its
    relative name, so the folder can be moved or served as it is. Each attachment is copied to a
    staging name of its own first, then moved into place; the page is written last."""
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in attachments.items():
        target = folder / name
        staging = folder / f".{Path(name).name}.{uuid.uuid4().hex[:8]}.tmp"
        if source.is_dir():
            shutil.copytree(source, staging)
        else:
            shutil.copyfile(source, staging)
        if target.is_dir():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.replace(target)
    return write_report(path, page)


def write_report(path: Path, page: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page)
    tmp.replace(path)
    return path
