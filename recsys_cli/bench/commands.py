"""`recsys bench similarity | training | scale | nightly | publish`: each benchmark's options and its handler.

The benchmarks themselves are the modules beside this one;
this module only turns their options into calls and writes the figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recsys_cli.bench.scale import DRIVER_MEMORY, STAGES, TRAIN_SAMPLE_ROWS

# defaults of `recsys bench similarity`
SIMILARITY_ITEMS = 62_000
SIMILARITY_DIM = 32
SIMILARITY_K = 10
SIMILARITY_SEED = 0
SIMILARITY_JOB_DRIVER_MEMORY = "4g"
# defaults of `recsys bench training`
TRAINING_EXAMPLES = (1_000_000,)
TRAINING_USERS = 100_000
TRAINING_ITEMS = 10_000
TRAINING_BATCH_SIZE = 256
TRAINING_REPEAT = 3
TRAINING_MODELS = ("classification", "softmax")
# the softmax towers train some 10x slower per example (each batch scored against 512 sampled
# negatives too, id embeddings, 50-item histories): fewer examples keep the bench to minutes
TRAINING_SOFTMAX_EXAMPLES = (200_000,)
# defaults of `recsys bench scale`
SCALE_USERS = 1_000_000
SCALE_ITEMS = 100_000
SCALE_INTERACTIONS = 50_000_000
SCALE_DATA = "data/bench-scale/inputs"
SCALE_WORK = "data/bench-scale/work"
SCALE_DRIVER_MEMORY = DRIVER_MEMORY
SCALE_TRAIN_SAMPLE = TRAIN_SAMPLE_ROWS
# defaults of `recsys bench nightly` (its data: the same generated set as `bench scale`'s)
NIGHTLY_WORK = "data/bench-nightly"
NIGHTLY_NIGHTS = 2
# defaults of `recsys bench publish`
PUBLISH_ROWS = 1_000_000
# row-by-row INSERT is far slower than COPY, and its rate does not depend on the row count: fewer
# rows measure the same rate in a reasonable time
PUBLISH_REFERENCE_ROWS = 20_000
PUBLISH_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PUBLISH_JOB_WORK = "data/bench-publish"


def _json_out() -> argparse.ArgumentParser:
    """--out, which every benchmark takes."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--out", help="also write the figures to this JSON file (default: printed only)")
    return p


def _generated_data() -> argparse.ArgumentParser:
    """The sizes of the generated data set and its folder, which `scale` and `nightly` share."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--users", type=int, default=SCALE_USERS, help="users of the generated data set")
    p.add_argument("--items", type=int, default=SCALE_ITEMS, help="items of the generated data set")
    p.add_argument(
        "--interactions",
        type=int,
        default=SCALE_INTERACTIONS,
        help="interactions of the generated data set",
    )
    p.add_argument(
        "--data", default=SCALE_DATA, help="its folder: generated once, reused for the same sizes"
    )
    return p


def _write_json(report: dict, out: str | None) -> None:
    if out:
        Path(out).write_text(json.dumps(report, indent=2))


def cmd_bench_similarity(a) -> int:
    from recsys_cli.bench.similarity import bench_similarity, print_similarity

    report = bench_similarity(a.items, a.dim, a.k, a.seed)
    if a.spark_items:
        import tempfile

        from recsys_cli.bench.similarity import bench_similarity_job

        with tempfile.TemporaryDirectory(prefix="recsys-bench-similarity-") as work:
            report["spark_job"] = bench_similarity_job(
                a.spark_items, a.dim, a.k, a.seed, Path(work), a.driver_memory
            )
    print_similarity(report)
    _write_json(report, a.out)
    return 0


def add_similarity(bsub, out: argparse.ArgumentParser) -> None:
    p = bsub.add_parser(
        "similarity",
        parents=[out],
        help="top-k kernel vs exact FAISS vs a bare matmul, time and peak memory",
    )
    p.add_argument("--items", type=int, default=SIMILARITY_ITEMS, help="items: random unit vectors")
    p.add_argument("--dim", type=int, default=SIMILARITY_DIM, help="their dimension")
    p.add_argument("--k", type=int, default=SIMILARITY_K, help="neighbors per item")
    p.add_argument("--seed", type=int, default=SIMILARITY_SEED, help="seed of the random vectors")
    p.add_argument(
        "--spark-items",
        type=int,
        default=0,
        help="also run the item_similarity Spark job on this many items (its time and peak memory); "
        "0: no Spark job",
    )
    p.add_argument(
        "--driver-memory",
        default=SIMILARITY_JOB_DRIVER_MEMORY,
        help="Spark driver memory of that job, in local mode",
    )
    p.set_defaults(func=cmd_bench_similarity)


def cmd_bench_training(a) -> int:
    from recsys_cli.bench.training import bench_training, print_training

    report = bench_training(
        a.examples,
        a.users,
        a.items,
        a.batch_size,
        repeat=a.repeat,
        models=tuple(a.models),
        softmax_sizes=a.softmax_examples,
    )
    print_training(report)
    _write_json(report, a.out)
    return 0


def add_training(bsub, out: argparse.ArgumentParser) -> None:
    p = bsub.add_parser(
        "training",
        parents=[out],
        help="towers trained from streamed examples vs model.fit on arrays",
    )
    p.add_argument(
        "--examples",
        type=int,
        nargs="+",
        default=list(TRAINING_EXAMPLES),
        help="classification training examples, one run of each classification method per size",
    )
    p.add_argument(
        "--softmax-examples",
        type=int,
        nargs="+",
        default=list(TRAINING_SOFTMAX_EXAMPLES),
        help="softmax training examples (interactions, each a positive), one run of each softmax "
        "method per size",
    )
    p.add_argument(
        "--users", type=int, default=TRAINING_USERS, help="users (rows of random user features)"
    )
    p.add_argument(
        "--items", type=int, default=TRAINING_ITEMS, help="items (rows of random item features)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=TRAINING_BATCH_SIZE,
        help="training batch size of both methods",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=TRAINING_REPEAT,
        help="alternated runs of each method; the median is shown",
    )
    p.add_argument(
        "--models",
        nargs="+",
        choices=TRAINING_MODELS,
        default=list(TRAINING_MODELS),
        help="towers to bench: classification (stream, in_memory) and/or softmax "
        "(softmax_stream, softmax_in_memory)",
    )
    p.set_defaults(func=cmd_bench_training)


def cmd_bench_nightly(a) -> int:
    from recsys_cli.bench.nightly import bench_nightly, print_nightly

    report = bench_nightly(
        Path(a.data),
        Path(a.work),
        a.users,
        a.items,
        a.interactions,
        a.url,
        nights=a.nights,
        spark_master=a.spark_master,
        driver_memory=a.driver_memory,
        als=not a.no_als,
        first_night=tuple(a.first_night_set),
        executor_memory=a.executor_memory,
    )
    print_nightly(report)
    _write_json(report, a.out)
    return 0


def add_nightly(bsub, out: argparse.ArgumentParser) -> None:
    p = bsub.add_parser(
        "nightly",
        parents=[out, _generated_data()],
        help="the whole DAG through Airflow at scale, night after night: each task's seconds and "
        "peak memory, and Spark ALS in the same run",
    )
    p.add_argument("--work", default=NIGHTLY_WORK, help="lake, models, Airflow home and logs")
    p.add_argument("--url", default=PUBLISH_URL, help="the warehouse the nights publish into")
    p.add_argument(
        "--nights",
        type=int,
        default=NIGHTLY_NIGHTS,
        help="consecutive ds to run: the first trains in full, the others warm-start",
    )
    p.add_argument(
        "--spark-master",
        default="",
        help="the Spark tasks' master, e.g. spark://host:7077, or 'standalone': a master and a "
        "worker started on this machine for the run, with their executors' memory measured too "
        "(default: the config's, local[*])",
    )
    p.add_argument(
        "--driver-memory",
        default=SCALE_DRIVER_MEMORY,
        help=f"spark.driver_memory (default: {SCALE_DRIVER_MEMORY})",
    )
    p.add_argument(
        "--executor-memory",
        default=SCALE_DRIVER_MEMORY,
        help="with --spark-master standalone: the memory the worker offers and its one executor "
        f"takes (default: {SCALE_DRIVER_MEMORY})",
    )
    p.add_argument(
        "--first-night-set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="a setting of the first night only, repeatable; it trains in full so that the later "
        "nights can warm-start, e.g. model.epochs=1 to reach them sooner (default: none)",
    )
    p.add_argument("--no-als", action="store_true", help="skip the Spark ALS reference")
    p.set_defaults(func=cmd_bench_nightly)


def cmd_bench_scale(a) -> int:
    from recsys_cli.bench.scale import bench_scale, print_scale

    report = bench_scale(
        Path(a.data),
        Path(a.work),
        a.users,
        a.items,
        a.interactions,
        driver_memory=a.driver_memory,
        sample=a.train_sample,
        als=not a.no_als,
        only=a.only,
    )
    print_scale(report)
    _write_json(report, a.out)
    return 0


def add_scale(bsub, out: argparse.ArgumentParser) -> None:
    p = bsub.add_parser(
        "scale",
        parents=[out, _generated_data()],
        help="features, similarity, retrieval, ranking at scale vs Spark ALS",
    )
    p.add_argument("--work", default=SCALE_WORK, help="lake, models and logs of the stages")
    p.add_argument(
        "--driver-memory",
        default=SCALE_DRIVER_MEMORY,
        help="Spark driver memory of every stage, in local mode",
    )
    p.add_argument(
        "--train-sample",
        type=int,
        default=SCALE_TRAIN_SAMPLE,
        help="interactions the towers are fitted on",
    )
    p.add_argument("--no-als", action="store_true", help="skip the ALS reference")
    rerunnable = [*STAGES, "als_reference"]
    p.add_argument(
        "--only",
        nargs="+",
        choices=rerunnable,
        metavar="STAGE",
        help=f"rerun only these stages ({', '.join(rerunnable)}) on the lake of an earlier run in --work "
        "(default: every stage)",
    )
    p.set_defaults(func=cmd_bench_scale)


def cmd_bench_publish(a) -> int:
    if a.job:
        from recsys_cli.bench.publish_job import bench_publish_job, print_publish_job

        report = bench_publish_job(a.job, Path(a.work), a.url)
        print_publish_job(report)
        _write_json(report, a.out)
        return 0
    from recsys_cli.bench.publish import bench_publish, print_publish

    report = bench_publish(a.rows, a.reference_rows, a.url)
    print_publish(report)
    _write_json(report, a.out)
    return 0


def add_publish(bsub, out: argparse.ArgumentParser) -> None:
    p = bsub.add_parser(
        "publish", parents=[out], help="PostgreSQL bulk load (COPY) vs row-by-row INSERT"
    )
    p.add_argument(
        "--rows", type=int, default=PUBLISH_ROWS, help="recommendation rows loaded with COPY"
    )
    p.add_argument(
        "--reference-rows",
        type=int,
        default=PUBLISH_REFERENCE_ROWS,
        help="rows for the row-by-row reference",
    )
    p.add_argument(
        "--url",
        default=PUBLISH_URL,
        help="warehouse to load into: a scratch table, or with --job the warehouse the step "
        "publishes to (PostgreSQL or duckdb:///path)",
    )
    p.add_argument(
        "--job",
        type=int,
        metavar="USERS",
        help="instead: the whole publish step (audit, staged load, switch) on a synthetic night of "
        "USERS x 20 recommendations against USERS x 50 interactions, its seconds and peak memory "
        "against reading those inputs whole into pandas (default: off)",
    )
    p.add_argument(
        "--work",
        default=PUBLISH_JOB_WORK,
        help=f"with --job: the work folder its synthetic lake is written to (default: {PUBLISH_JOB_WORK})",
    )
    p.set_defaults(func=cmd_bench_publish)


def add_bench(sub) -> None:
    """`recsys bench` and its benchmarks; sub is the subparsers action of the `recsys` parser."""
    bench = sub.add_parser(
        "bench", help="benchmarks that print figures and ratios against a reference"
    )
    bsub = bench.add_subparsers(dest="bench", required=True)
    out = _json_out()
    for add in (add_similarity, add_training, add_scale, add_nightly, add_publish):
        add(bsub, out)
