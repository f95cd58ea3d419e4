"""The `recsys` command: generate or ingest data, run the nightly DAG, read recommendations back."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from jobs.common import DEFAULT_WORK_DIR, PROJECT_ROOT, resolve_warehouse_url
from recsys_cli.bench_scale import STAGES
from recsys_core.errors import RecsysError

DEFAULT_CONFIG = PROJECT_ROOT / "config" / "recsys.toml"


def cmd_generate(a) -> int:
    from recsys_core.generate import generate_dataset

    counts = generate_dataset(a.out, users=a.users, items=a.items, interactions=a.interactions, seed=a.seed)
    print(f"wrote {counts} to {a.out}")
    return 0


def cmd_ingest(a) -> int:
    from recsys_core.movielens import ingest_movielens

    counts = ingest_movielens(a.src, a.out)
    print(f"wrote {counts} to {a.out}")
    return 0


def _run_setup(a) -> tuple[dict, Path, Path]:
    """The DagRun conf, work folder and Airflow home of `run` and `backfill`; a bad config stops here."""
    from recsys_cli.airflow_run import DEFAULT_AIRFLOW_HOME
    from recsys_core.config import load_config

    config = load_config(a.config, a.set or [])  # refuse a bad config before starting Airflow
    work = Path(a.work).resolve()
    conf = {
        "data_dir": str(Path(a.data).resolve()),
        "work_dir": str(work),
        "warehouse_url": resolve_warehouse_url(a.warehouse, config, work),
        "config_path": str(Path(a.config).resolve()) if a.config else "",
        "settings": a.set or [],
        "top_n": a.top_n,  # validated by the DAG's Param (1..1000) before any task runs
    }
    return conf, work, Path(a.airflow_home).resolve() if a.airflow_home else DEFAULT_AIRFLOW_HOME


def cmd_run(a) -> int:
    from recsys_cli.airflow_run import run_dag
    from recsys_core.lake import check_ds

    ds = check_ds(a.ds or dt.datetime.now(dt.UTC).date().isoformat())
    conf, work, home = _run_setup(a)
    return run_dag(ds, conf, work, home)


def cmd_backfill(a) -> int:
    """One DagRun per ds from --start to --end; each replaces its own partition, in any order."""
    from recsys_cli.airflow_run import run_dag
    from recsys_core.lake import check_ds

    start, end = dt.date.fromisoformat(check_ds(a.start)), dt.date.fromisoformat(check_ds(a.end))
    if end < start:
        raise RecsysError(f"backfill: --end {end} is before --start {start}")
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    conf, work, home = _run_setup(a)
    failed = [d for d in (reversed(days) if a.reverse else days) if run_dag(d.isoformat(), conf, work, home)]
    print(f"backfill: {len(days) - len(failed)} of {len(days)} ds published" +
          (f"; failed: {', '.join(map(str, failed))}" if failed else ""))
    return 1 if failed else 0


def cmd_recommend(a) -> int:
    from recsys_cli.show import print_recommendations
    from recsys_core.config import load_config

    url = resolve_warehouse_url(a.warehouse, load_config(a.config), Path(a.work).resolve())
    return print_recommendations(url, a.user or [], a.sample, a.ds)


def cmd_similar(a) -> int:
    from recsys_cli.show import print_similar
    from recsys_core.config import load_config

    url = resolve_warehouse_url(a.warehouse, load_config(a.config), Path(a.work).resolve())
    return print_similar(url, a.item, a.ds)


def cmd_report(a) -> int:
    """Where the HTML run report of a ds (default: the newest) is."""
    reports = Path(a.work).resolve() / "reports"
    found = sorted(reports.glob(f"ds={a.ds}/report.html" if a.ds else "ds=*/report.html"))
    if not found:
        print(f"no run report under {reports}" + (f" for ds {a.ds}" if a.ds else ""), file=sys.stderr)
        return 1
    print(found[-1])
    return 0


def cmd_evaluate(a) -> int:
    """The offline evaluation: every system on the protocol's split, cold start and the tradeoff curve."""
    import json
    import logging

    from recsys_core.config import load_config
    from recsys_core.experiment import evaluate, plot_tradeoff
    from recsys_core.spark import spark_session

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(a.config, a.set or [])
    spark = spark_session(cfg.spark, "recsys-evaluate")
    report = evaluate(spark, a.data, cfg, a.holdout, baselines=not a.no_baselines, sweep=not a.no_sweep,
                      cold=not a.no_cold_start)
    if a.plot and report.get("tradeoff"):
        report["plot"] = str(plot_tradeoff(report["tradeoff"], a.plot))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"{'system':<18}{'ndcg@10':>9}{'recall@10':>11}{'prec@10':>9}{'coverage':>10}{'rmse':>7}{'seconds':>9}")
    for name, m in report["systems"].items():
        rmse = f"{m['rmse']:.3f}" if "rmse" in m else "-"
        print(f"{name:<18}{m['ndcg@10']:>9.4f}{m['recall@10']:>11.4f}{m['precision@10']:>9.4f}"
              f"{m['coverage']:>10.4f}{rmse:>7}{m['seconds']:>9.1f}")
    print(f"report: {out}")
    return 0


def cmd_bench_similarity(a) -> int:
    import json

    from recsys_cli.bench import bench_similarity, print_similarity

    report = bench_similarity(a.items, a.dim, a.k, a.seed)
    if a.spark_items:
        import tempfile

        from recsys_cli.bench import bench_similarity_job

        with tempfile.TemporaryDirectory(prefix="recsys-bench-similarity-") as work:
            report["spark_job"] = bench_similarity_job(a.spark_items, a.dim, a.k, a.seed, Path(work), a.driver_memory)
    print_similarity(report)
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=2))
    return 0


def cmd_bench_training(a) -> int:
    import json

    from recsys_cli.bench_training import bench_training, print_training

    report = bench_training(a.examples, a.users, a.items, a.batch_size, repeat=a.repeat)
    print_training(report)
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=2))
    return 0


def cmd_bench_scale(a) -> int:
    import json

    from recsys_cli.bench_scale import bench_scale, print_scale

    report = bench_scale(Path(a.data), Path(a.work), a.users, a.items, a.interactions, driver_memory=a.driver_memory,
                         sample=a.train_sample, als=not a.no_als, only=a.only)
    print_scale(report)
    if a.out:
        Path(a.out).write_text(json.dumps(report, indent=2))
    return 0


def cmd_ui(a) -> int:
    """`airflow standalone` on this project's DAGs and metadata: the UI to try triggers and read logs."""
    import os

    from recsys_cli.airflow_run import DEFAULT_AIRFLOW_HOME, airflow_env

    home = Path(a.airflow_home).resolve() if a.airflow_home else DEFAULT_AIRFLOW_HOME
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home)
    env.update(AIRFLOW__API__PORT=str(a.port), AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
               AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://localhost:{a.port}/execution/")
    airflow = str(Path(sys.executable).with_name("airflow"))
    print(f"Airflow UI on http://localhost:{a.port} (no login: local use only); Ctrl-C stops it", flush=True)
    os.execve(airflow, [airflow, "standalone"], env)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="recsys", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write a synthetic, learnable users/items/interactions dataset")
    g.add_argument("--out", required=True)
    g.add_argument("--users", type=int, default=2000)
    g.add_argument("--items", type=int, default=1000)
    g.add_argument("--interactions", type=int, default=60000)
    g.add_argument("--seed", type=int, default=42)
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("ingest", help="convert a public dataset into the input tables")
    isub = i.add_subparsers(dest="source", required=True)
    ml = isub.add_parser("movielens", help="ml-latest-small, ml-100k or ml-1m, as a folder or .zip")
    ml.add_argument("src")
    ml.add_argument("--out", required=True)
    ml.set_defaults(func=cmd_ingest)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data", required=True, help="folder with users/, items/, interactions/")
    common.add_argument("--warehouse", help="duckdb:///path/file.duckdb or postgresql://user@host:port/db "
                        "(default: <work>/warehouse.duckdb)")
    common.add_argument("--config", default=str(DEFAULT_CONFIG), help="TOML config file")
    common.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="config override, repeatable")
    common.add_argument("--work", default=str(DEFAULT_WORK_DIR), help="lake and models folder (default: data/)")
    common.add_argument("--top-n", type=int, help="recommendations per user (DAG param top_n)")
    common.add_argument("--airflow-home", help="Airflow home with its SQLite metadata (default: .airflow/)")

    r = sub.add_parser("run", parents=[common], help="run the nightly DAG once through Airflow")
    r.add_argument("--ds", help="logical date YYYY-MM-DD (default: today, UTC)")
    r.set_defaults(func=cmd_run)

    b = sub.add_parser("backfill", parents=[common], help="run the DAG for every ds of a date range")
    b.add_argument("--start", required=True, help="first ds, YYYY-MM-DD")
    b.add_argument("--end", required=True, help="last ds, YYYY-MM-DD (inclusive)")
    b.add_argument("--reverse", action="store_true", help="newest ds first")
    b.set_defaults(func=cmd_backfill)

    rec = sub.add_parser("recommend", help="print users' recommendations from the warehouse")
    rec.add_argument("--user", type=int, action="append", help="user id, repeatable")
    rec.add_argument("--sample", type=int, default=0, help="also show this many users (lowest ids)")
    rec.add_argument("--ds", help="partition to read (default: recommendations_latest)")
    rec.add_argument("--warehouse", help="warehouse URL (default: <work>/warehouse.duckdb)")
    rec.add_argument("--work", default=str(DEFAULT_WORK_DIR))
    rec.add_argument("--config", default=str(DEFAULT_CONFIG), help="TOML config file (for warehouse.url)")
    rec.set_defaults(func=cmd_recommend)

    sim = sub.add_parser("similar", help="print an item's nearest items from the warehouse")
    sim.add_argument("--item", type=int, required=True)
    sim.add_argument("--ds", help="partition to read (default: the newest)")
    sim.add_argument("--warehouse", help="warehouse URL (default: config warehouse.url, else <work>/warehouse.duckdb)")
    sim.add_argument("--work", default=str(DEFAULT_WORK_DIR))
    sim.add_argument("--config", default=str(DEFAULT_CONFIG))
    sim.set_defaults(func=cmd_similar)

    ev = sub.add_parser("evaluate", help="offline evaluation against popularity and ALS, with the tradeoff curve")
    ev.add_argument("--data", required=True, help="folder with users/, items/, interactions/")
    ev.add_argument("--out", required=True, help="JSON report to write")
    ev.add_argument("--plot", help="PNG of the retrieval-size tradeoff curve")
    ev.add_argument("--holdout", choices=["test", "validation"], default="test",
                    help="validation: split the training part again, for tuning without the test set")
    ev.add_argument("--config", default=str(DEFAULT_CONFIG), help="TOML config file")
    ev.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="config override, repeatable")
    ev.add_argument("--no-baselines", action="store_true", help="skip popularity and ALS")
    ev.add_argument("--no-sweep", action="store_true", help="skip the retrieval-size tradeoff")
    ev.add_argument("--no-cold-start", action="store_true", help="skip the cold-start figure")
    ev.set_defaults(func=cmd_evaluate)

    bench = sub.add_parser("bench", help="benchmarks that print figures and ratios against a reference")
    bsub = bench.add_subparsers(dest="bench", required=True)
    bs = bsub.add_parser("similarity", help="top-k kernel vs exact FAISS vs a bare matmul, time and peak memory")
    bs.add_argument("--items", type=int, default=62_000)
    bs.add_argument("--dim", type=int, default=32)
    bs.add_argument("--k", type=int, default=10)
    bs.add_argument("--seed", type=int, default=0)
    bs.add_argument("--spark-items", type=int, default=0,
                    help="also run the item_similarity Spark job on this many items (its time and peak memory)")
    bs.add_argument("--driver-memory", default="4g", help="Spark driver memory of that job (local mode)")
    bs.add_argument("--out", help="also write the figures as JSON")
    bs.set_defaults(func=cmd_bench_similarity)
    bt = bsub.add_parser("training", help="towers trained from the Parquet example stream vs model.fit on arrays")
    bt.add_argument("--examples", type=int, nargs="+", default=[1_000_000],
                    help="training examples, one run of each method per size")
    bt.add_argument("--users", type=int, default=100_000)
    bt.add_argument("--items", type=int, default=10_000)
    bt.add_argument("--batch-size", type=int, default=256)
    bt.add_argument("--repeat", type=int, default=3, help="alternated runs of each method; the median is shown")
    bt.add_argument("--out", help="also write the figures as JSON")
    bt.set_defaults(func=cmd_bench_training)
    bsc = bsub.add_parser("scale", help="features, similarity, retrieval, ranking at scale vs Spark ALS")
    bsc.add_argument("--users", type=int, default=1_000_000)
    bsc.add_argument("--items", type=int, default=100_000)
    bsc.add_argument("--interactions", type=int, default=50_000_000)
    bsc.add_argument("--data", default="data/bench-scale/inputs", help="generated once, reused for the same sizes")
    bsc.add_argument("--work", default="data/bench-scale/work", help="lake, models and logs of the stages")
    bsc.add_argument("--driver-memory", default="12g", help="Spark driver memory of every stage (local mode)")
    bsc.add_argument("--train-sample", type=int, default=1_000_000, help="interactions the towers are fitted on")
    bsc.add_argument("--no-als", action="store_true", help="skip the ALS reference")
    bsc.add_argument("--only", nargs="+", choices=[*STAGES, "als_reference"],
                     help="rerun only these stages on the lake of an earlier run in --work")
    bsc.add_argument("--out", help="also write the figures as JSON")
    bsc.set_defaults(func=cmd_bench_scale)

    ui = sub.add_parser("ui", help="start a local Airflow (airflow standalone) to use the UI")
    ui.add_argument("--port", type=int, default=8080)
    ui.add_argument("--airflow-home", help="Airflow home (default: .airflow/)")
    ui.set_defaults(func=cmd_ui)

    rep = sub.add_parser("report", help="print where a run's HTML report is")
    rep.add_argument("--ds", help="run date (default: the newest report)")
    rep.add_argument("--work", default=str(DEFAULT_WORK_DIR))
    rep.set_defaults(func=cmd_report)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except RecsysError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
