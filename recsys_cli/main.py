"""The `recsys` command: generate or ingest data, run the nightly DAG, read recommendations back."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from recsys_cli.bench.commands import add_bench
from recsys_core.config import DEFAULT_AIRFLOW_HOME, DEFAULT_CONFIG_PATH, DEFAULT_WORK_DIR
from recsys_core.errors import RecsysError
from recsys_core.io import layout
from recsys_core.step_runner import (
    LOG_FORMAT,
    LOG_LEVEL_ENV,
    LOG_LEVELS,
    log_level,
    resolve_warehouse_url,
)

# defaults of `recsys generate` (those of recsys_core.datasets.generate.generate_dataset)
GENERATE_USERS = 2_000
GENERATE_ITEMS = 1_000
GENERATE_INTERACTIONS = 60_000
GENERATE_SEED = 42
# where `recsys ui` listens: it has no login, so nothing but this machine may reach it
UI_HOST = "127.0.0.1"
UI_PORT = 8080
# trainings the evaluation averages the towers over: a difference smaller than their spread is noise
EVALUATE_SEEDS = 3
# exit code of a command that failed on a RecsysError (bad input, config or state), as argparse's
# usage errors: the command was given something it cannot use
EXIT_RECSYS_ERROR = 2


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Ends an option's help with its default, unless the help states it already or there is none to
    show (a required option, or None: then the help says what happens without the option)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.required or action.default in (None, argparse.SUPPRESS) or "default" in text:
            return action.help
        return super()._get_help_string(action)


class CommandParser(argparse.ArgumentParser):
    """The `recsys` parser; argparse builds every subcommand's parser with its parent's class, so
    their help shows the defaults too."""

    def __init__(self, *args, formatter_class=DefaultsHelpFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


# The options several commands take, each declared once; a command takes them with parents=[shared(...)].
SHARED_OPTIONS: dict[str, dict] = {
    "--data": {"required": True, "help": "folder with users/, items/, interactions/"},
    "--warehouse": {
        "help": "duckdb:///path/file.duckdb or postgresql://user@host:port/db; a URL with a "
        "password belongs in RECSYS_WAREHOUSE_URL or AIRFLOW_CONN_RECSYS_WAREHOUSE instead, not on a "
        "command line (default: those variables, then the config's warehouse.url, else "
        "<work>/warehouse.duckdb)"
    },
    "--config": {"default": str(DEFAULT_CONFIG_PATH), "help": "TOML config file"},
    "--set": {
        "action": "append",
        "metavar": "SECTION.KEY=VALUE",
        "help": "config override, repeatable (default: none)",
    },
    "--work": {"default": str(DEFAULT_WORK_DIR), "help": "lake, models and reports folder"},
    "--top-n": {
        "type": int,
        "help": "recommendations per user, the DAG param top_n (default: the config's ranking.top_n)",
    },
    "--json": {
        "action": "store_true",
        "help": "print JSON for programs instead of text (default: text)",
    },
    "--airflow-home": {
        "help": f"Airflow home with its SQLite metadata (default: {DEFAULT_AIRFLOW_HOME})"
    },
}
RUN_OPTIONS = ("--data", "--warehouse", "--config", "--set", "--work", "--top-n", "--airflow-home")
READ_OPTIONS = ("--warehouse", "--work", "--config")  # where `recommend` and `similar` read


def shared(*flags: str) -> argparse.ArgumentParser:
    """A parent parser with these options of SHARED_OPTIONS."""
    p = argparse.ArgumentParser(add_help=False)
    for flag in flags:
        p.add_argument(flag, **SHARED_OPTIONS[flag])
    return p


def ds_option(meaning: str) -> argparse.ArgumentParser:
    """A parent parser with --ds, whose meaning and default depend on the command."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--ds", metavar="YYYY-MM-DD", help=meaning)
    return p


def cmd_generate(a) -> int:
    from recsys_cli.live import reporter
    from recsys_core.datasets.generate import generate_dataset

    with reporter(sys.stdout.isatty()) as say:
        counts = generate_dataset(
            a.out,
            users=a.users,
            items=a.items,
            interactions=a.interactions,
            seed=a.seed,
            report=say,
        )
    print(f"wrote {counts} to {a.out}")
    return 0


def add_generate(sub) -> None:
    p = sub.add_parser(
        "generate", help="write a synthetic, learnable users/items/interactions dataset"
    )
    p.add_argument("--out", required=True, help="folder to write users/, items/, interactions/ to")
    p.add_argument("--users", type=int, default=GENERATE_USERS, help="users to generate")
    p.add_argument("--items", type=int, default=GENERATE_ITEMS, help="items to generate")
    p.add_argument(
        "--interactions", type=int, default=GENERATE_INTERACTIONS, help="interactions to generate"
    )
    p.add_argument("--seed", type=int, default=GENERATE_SEED, help="random seed")
    p.set_defaults(func=cmd_generate)


def cmd_ingest(a) -> int:
    from recsys_cli.live import reporter
    from recsys_core.datasets.movielens import ingest_movielens

    with reporter(sys.stdout.isatty()) as say:
        counts = ingest_movielens(a.src, a.out, report=say)
    print(f"wrote {counts} to {a.out}")
    return 0


def add_ingest(sub) -> None:
    p = sub.add_parser("ingest", help="convert a public dataset into the input tables")
    isub = p.add_subparsers(dest="source", required=True)
    ml = isub.add_parser("movielens", help="ml-latest-small, ml-100k or ml-1m, as a folder or .zip")
    ml.add_argument("src", help="the MovieLens folder or .zip")
    ml.add_argument("--out", required=True, help="folder to write users/, items/, interactions/ to")
    ml.set_defaults(func=cmd_ingest)


def _run_setup(a) -> tuple[dict, dict, Path, Path]:
    """The DagRun conf (what a trigger chooses), the deployment's environment (folders, config,
    warehouse, the --set overrides), the work folder and the Airflow home of `run` and `backfill`;
    a bad config stops here."""
    from recsys_core.config import load_config

    config = load_config(a.config, a.set or [])  # refuse a bad config before starting Airflow
    work = Path(a.work).resolve()
    env = {
        "RECSYS_DATA_DIR": str(Path(a.data).resolve()),
        "RECSYS_WORK_DIR": str(work),
        "RECSYS_CONFIG": str(Path(a.config).resolve()) if a.config else "",
        # passed in the environment, never on a command line: the URL may hold a password
        "RECSYS_WAREHOUSE_URL": resolve_warehouse_url(a.warehouse, config, work),
        "RECSYS_DEPLOYMENT_SETTINGS": "\n".join(a.set or []),
    }
    conf = {"top_n": a.top_n}  # validated by the DAG's Param (1..1000) before any task runs
    home = Path(a.airflow_home).resolve() if a.airflow_home else DEFAULT_AIRFLOW_HOME
    return conf, env, work, home


def cmd_run(a) -> int:
    from recsys_cli.airflow_run import run_dag
    from recsys_core.io.lake import check_ds
    from recsys_core.trigger import check_ds_not_ahead

    ds = check_ds_not_ahead(check_ds(a.ds or dt.datetime.now(dt.UTC).date().isoformat()))
    conf, env, work, home = _run_setup(a)
    return run_dag(ds, conf, work, home, env)


def add_run(sub) -> None:
    p = sub.add_parser(
        "run",
        parents=[shared(*RUN_OPTIONS), ds_option("logical date (default: today, UTC)")],
        help="run the nightly DAG once through Airflow",
    )
    p.set_defaults(func=cmd_run)


def cmd_backfill(a) -> int:
    """One DagRun per ds from --start to --end; each replaces its own partition, in any order."""
    from recsys_cli.airflow_run import run_dag
    from recsys_core.io.lake import check_ds
    from recsys_core.trigger import check_ds_not_ahead

    start = dt.date.fromisoformat(check_ds(a.start))
    end = dt.date.fromisoformat(check_ds_not_ahead(check_ds(a.end)))
    if end < start:
        raise RecsysError(f"backfill: --end {end} is before --start {start}")
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    conf, env, work, home = _run_setup(a)
    failed = [
        d
        for d in (reversed(days) if a.reverse else days)
        if run_dag(d.isoformat(), conf, work, home, env)
    ]
    print(
        f"backfill: {len(days) - len(failed)} of {len(days)} ds published"
        + (f"; failed: {', '.join(map(str, failed))}" if failed else "")
    )
    return 1 if failed else 0


def add_backfill(sub) -> None:
    p = sub.add_parser(
        "backfill", parents=[shared(*RUN_OPTIONS)], help="run the DAG for every ds of a date range"
    )
    p.add_argument("--start", required=True, help="first ds, YYYY-MM-DD")
    p.add_argument("--end", required=True, help="last ds, YYYY-MM-DD (inclusive)")
    p.add_argument("--reverse", action="store_true", help="newest ds first")
    p.set_defaults(func=cmd_backfill)


def cmd_recommend(a) -> int:
    from recsys_cli.show import print_recommendations
    from recsys_core.config import load_config

    url = resolve_warehouse_url(a.warehouse, load_config(a.config), Path(a.work).resolve())
    return print_recommendations(url, a.user or [], a.sample, a.ds, a.json)


def add_recommend(sub) -> None:
    p = sub.add_parser(
        "recommend",
        parents=[
            shared(*READ_OPTIONS, "--json"),
            ds_option("partition to read (default: recommendations_latest)"),
        ],
        help="print users' recommendations from the warehouse",
    )
    p.add_argument(
        "--user",
        type=int,
        action="append",
        help="user id, repeatable (default: none; see --sample)",
    )
    p.add_argument(
        "--sample", type=int, default=0, help="also show this many users, those of the lowest ids"
    )
    p.set_defaults(func=cmd_recommend)


def cmd_similar(a) -> int:
    from recsys_cli.show import print_similar
    from recsys_core.config import load_config

    url = resolve_warehouse_url(a.warehouse, load_config(a.config), Path(a.work).resolve())
    return print_similar(url, a.item, a.ds, a.json)


def add_similar(sub) -> None:
    p = sub.add_parser(
        "similar",
        parents=[
            shared(*READ_OPTIONS, "--json"),
            ds_option("partition to read (default: the newest)"),
        ],
        help="print an item's nearest items from the warehouse",
    )
    p.add_argument("--item", type=int, required=True, help="item id")
    p.set_defaults(func=cmd_similar)


def cmd_report(a) -> int:
    """Where the HTML run report of a ds (default: the newest) is."""
    work = layout.WorkDir(Path(a.work).resolve())
    reports = work.reports
    found = [work.report(a.ds)] if a.ds else sorted(reports.glob(f"ds=*/{layout.REPORT_FILE}"))
    found = [path for path in found if path.is_file()]
    if not found:
        print(
            f"no run report under {reports}" + (f" for ds {a.ds}" if a.ds else ""), file=sys.stderr
        )
        return 1
    if a.json:
        ds = found[-1].parent.name.removeprefix("ds=")
        print(json.dumps({"ds": ds, "report": str(found[-1]), "folder": str(found[-1].parent)}))
    else:
        print(found[-1])
    return 0


def add_report(sub) -> None:
    sub.add_parser(
        "report",
        parents=[shared("--work", "--json"), ds_option("run date (default: the newest report)")],
        help="print where a run's HTML report is",
    ).set_defaults(func=cmd_report)


def cmd_evaluate(a) -> int:
    """The offline evaluation: every system on the protocol's split, cold start and the tradeoff curve."""
    from recsys_core.config import load_config
    from recsys_core.evaluation.experiment import evaluate, plot_tradeoff
    from recsys_core.spark import spark_session

    cfg = load_config(a.config, a.set or [])
    spark = spark_session(cfg.spark, "recsys-evaluate")
    report = evaluate(
        spark,
        a.data,
        cfg,
        a.holdout,
        baselines=not a.no_baselines,
        sweep=not a.no_sweep,
        cold=not a.no_cold_start,
        seeds=a.seeds,
        search=not a.no_tuning,
        warm_start=not a.no_warm_start,
    )
    if a.plot and report.get("tradeoff"):
        report["plot"] = str(plot_tradeoff(report["tradeoff"], a.plot))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(
        f"{'system':<18}{'ndcg@10':>9}{'+-':>8}{'recall@10':>11}{'prec@10':>9}{'coverage':>10}"
        f"{'rmse':>7}{'seconds':>9}"
    )
    for name, m in report["systems"].items():
        rmse = f"{m['rmse']:.3f}" if "rmse" in m else "-"
        spread = f"{m['std']['ndcg@10']:.4f}" if "std" in m else "-"
        print(
            f"{name:<18}{m['ndcg@10']:>9.4f}{spread:>8}{m['recall@10']:>11.4f}{m['precision@10']:>9.4f}"
            f"{m['coverage']:>10.4f}{rmse:>7}{m['seconds']:>9.1f}"
        )
    if "warm_start" in report:
        w = report["warm_start"]
        print(
            f"warm start, {w['nights']} nights from a full training: ndcg@10 {w['warm']:.4f} against "
            f"{w['full']:.4f} for a full retrain ({w['ratio']:.3f}x), {w['warm_seconds_per_night']:.1f}s "
            f"a night against {w['full_seconds']:.1f}s"
        )
    print(f"report: {out}")
    return 0


def add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate",
        parents=[shared("--data", "--config", "--set")],
        help="offline evaluation against popularity, ALS, EASE and item-kNN, with the tradeoff curve",
    )
    p.add_argument("--out", required=True, help="JSON report to write")
    p.add_argument("--plot", help="PNG of the retrieval-size tradeoff curve (default: no plot)")
    p.add_argument(
        "--holdout",
        choices=["test", "validation"],
        default="test",
        help="test: the protocol's test split; validation: split the training part again, "
        "for tuning without the test set",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=EVALUATE_SEEDS,
        help="trainings of the towers (model.seed, model.seed + 1, ...): the pipeline's and the towers' "
        "figures are their mean, with the standard deviation",
    )
    p.add_argument(
        "--no-baselines", action="store_true", help="skip popularity, ALS, EASE and item-kNN"
    )
    p.add_argument("--no-sweep", action="store_true", help="skip the retrieval-size tradeoff")
    p.add_argument("--no-cold-start", action="store_true", help="skip the cold-start figure")
    p.add_argument(
        "--no-warm-start",
        action="store_true",
        help="skip the simulated week of warm-started nights against a full retrain",
    )
    p.add_argument(
        "--no-tuning",
        action="store_true",
        help="train the softmax towers as configured, without first searching their settings on "
        "the validation split inside the training part",
    )
    p.set_defaults(func=cmd_evaluate)


def cmd_ui(a) -> int:
    """`airflow standalone` on this project's DAGs and metadata: the UI to try triggers and read logs."""
    import os

    from recsys_cli.airflow_run import airflow_env

    home = Path(a.airflow_home).resolve() if a.airflow_home else DEFAULT_AIRFLOW_HOME
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home)
    env.update(
        # everyone is admin without a login, so it listens on this machine's loopback only
        AIRFLOW__API__HOST=UI_HOST,
        AIRFLOW__API__PORT=str(a.port),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://{UI_HOST}:{a.port}/execution/",
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    print(
        f"Airflow UI on http://{UI_HOST}:{a.port} (no login: this machine only); Ctrl-C stops it",
        flush=True,
    )
    os.execve(airflow, [airflow, "standalone"], env)
    return 0


def add_ui(sub) -> None:
    p = sub.add_parser(
        "ui",
        parents=[shared("--airflow-home")],
        help="start a local Airflow (airflow standalone) to use the UI",
    )
    p.add_argument("--port", type=int, default=UI_PORT, help="port of the Airflow UI and API")
    p.set_defaults(func=cmd_ui)


def add_completion(sub) -> None:
    p = sub.add_parser(
        "completion",
        help='print a shell completion script: eval "$(recsys completion bash)" in ~/.bashrc',
    )
    p.add_argument("shell", choices=["bash"], help="the shell (zsh: load it with bashcompinit)")
    p.set_defaults(func=cmd_completion)


def cmd_completion(a) -> int:
    from recsys_cli.completion import bash_script

    print(bash_script(parser()), end="")
    return 0


COMMANDS = (
    add_generate,
    add_ingest,
    add_run,
    add_backfill,
    add_recommend,
    add_similar,
    add_evaluate,
    add_bench,
    add_ui,
    add_report,
    add_completion,
)  # in the order `recsys --help` lists them


def package_version() -> str:
    try:
        return version("recsys-nightly")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    p = CommandParser(prog="recsys", description=__doc__)
    p.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    p.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=logging.getLevelName(log_level()),
        help=f"the log level of this command and of the jobs it runs (default: ${LOG_LEVEL_ENV}, "
        "else INFO)",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # the jobs a run starts (through Airflow) read the level from the environment, as this does
    os.environ[LOG_LEVEL_ENV] = args.log_level
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    try:
        return args.func(args)
    except RecsysError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_RECSYS_ERROR


if __name__ == "__main__":
    sys.exit(main())
