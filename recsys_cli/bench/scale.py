"""`recsys bench scale`: the pipeline's input validation and Spark stages on a large generated data set
against Spark ALS.

Each stage is the real job (`python -m jobs.<step>`) in its own process, timed, with the peak resident
memory of its whole process tree (the Python driver, Spark's JVM and its Python workers) sampled from
/proc. The towers are trained on a sample of the interactions first (training is benchmarked by
`recsys bench training`; ranking costs the same whatever the weights). The reference, in the same
run: Spark MLlib ALS (rank 32, implicit) fitted on the same interactions, then recommendForAllUsers(20).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from recsys_cli.bench.measure import measured
from recsys_core import columns as C
from recsys_core.io import layout
from recsys_core.io import layout as L

DS = "2026-01-31"
STAGES = (
    "validate_inputs",
    "build_features",
    "embed_items",
    "item_similarity",
    "retrieve_candidates",
    "rank_candidates",
)
SERVING = (
    "retrieve_candidates",
    "rank_candidates",
)  # the stages the goal is about: candidates to top N
DATA_SEED = 7  # any fixed seed: the generated data set is reused while sizes and seed match
DRIVER_MEMORY = "12g"  # Spark driver memory of every stage, in local mode
# interactions the towers are fitted on: training has its own benchmark, and ranking costs the same
# whatever the weights
TRAIN_SAMPLE_ROWS = 1_000_000
# the ALS reference: rank 32 on implicit feedback, Spark MLlib's defaults for the other settings
ALS_RANK = 32
ALS_MAX_ITER = 10
ALS_REG = 0.1
ALS_ALPHA = 1.0
ALS_SEED = 7
# ALS recommends as many items per user as the pipeline keeps (ranking.top_n's default)
ALS_TOP_N = 20


def prepare(data: Path, users: int, items: int, interactions: int, seed: int) -> dict:
    """Generate the data set once (reused when the same sizes are asked again)."""
    marker = data / "sizes.json"
    wanted = {"users": users, "items": items, "interactions": interactions, "seed": seed}
    generated = None
    if not marker.exists() or json.loads(marker.read_text()).get("asked") != wanted:
        from recsys_core.datasets.generate import generate_dataset

        start = time.perf_counter()
        counts = generate_dataset(
            data, users=users, items=items, interactions=interactions, seed=seed
        )
        generated = time.perf_counter() - start
        marker.write_text(json.dumps({"asked": wanted, "counts": counts}))
    return {"counts": json.loads(marker.read_text())["counts"], "generate_seconds": generated}


def bench_scale(
    data: Path,
    work: Path,
    users: int,
    items: int,
    interactions: int,
    seed: int = DATA_SEED,
    driver_memory: str = DRIVER_MEMORY,
    sample: int = TRAIN_SAMPLE_ROWS,
    als: bool = True,
    only: list[str] | None = None,
) -> dict:
    """Every stage then the ALS reference; `only` reruns just the named stages (and the ALS reference
    when "als_reference" is named) on the lake an earlier full run left in `work`."""
    work.mkdir(parents=True, exist_ok=True)
    saved = work / "scale-report.json"
    report = {"sizes": prepare(data, users, items, interactions, seed), "stages": {}}
    if (
        only is not None and saved.exists()
    ):  # the other stages' figures stay those of the earlier run
        report["stages"] = {
            name: {**r, "earlier_run": True}
            for name, r in json.loads(saved.read_text())["stages"].items()
        }
    common = [
        "--ds",
        DS,
        "--data",
        str(data),
        "--work",
        str(work),
        "--set",
        f"spark.driver_memory={driver_memory}",
    ]
    logs = work / "bench-logs"
    logs.mkdir(exist_ok=True)

    def stage(name: str, cmd: list[str]) -> None:
        print(f"  {name} ...", flush=True)
        result = measured(cmd, logs / f"{name}.log")
        if result["returncode"] != 0:
            raise RuntimeError(f"bench scale: {name} failed; see {logs / (name + '.log')}")
        record = layout.WorkDir(work).step_record(DS, name)
        if record.exists():
            result["rows_out"] = json.loads(record.read_text()).get("rows_out")
        report["stages"][name] = result
        saved.write_text(json.dumps(report, indent=2))

    for name in STAGES:
        if only is not None and name not in only:
            continue
        if name == "embed_items":  # the towers first, on a sample: see the module docstring
            stage(
                "train_on_sample",
                [
                    sys.executable,
                    "-m",
                    "recsys_cli.bench.scale",
                    "train-sample",
                    "--work",
                    str(work),
                    "--rows",
                    str(sample),
                ],
            )
        stage(name, [sys.executable, "-m", f"jobs.{name}", *common])
    if als and (only is None or "als_reference" in only):
        stage(
            "als_reference",
            [
                sys.executable,
                "-m",
                "recsys_cli.bench.scale",
                "als",
                "--data",
                str(data),
                "--work",
                str(work),
                "--driver-memory",
                driver_memory,
            ],
        )
    return report


def train_on_sample(work: Path, rows: int) -> None:
    """Fit the towers on the first `rows` interactions (one epoch) and make it this ds's model."""
    import pyarrow.dataset as pads

    from recsys_core.config import ModelConfig
    from recsys_core.io.lake import Lake
    from recsys_core.model.registry import write_serving
    from recsys_core.model.softmax_training import fit_softmax_towers

    lake = Lake(work / "lake")
    users = (
        lake.read_table(L.USER_FEATURES, DS).to_pandas().sort_values(C.USER_ID, ignore_index=True)
    )
    items = (
        lake.read_table(L.ITEM_FEATURES, DS).to_pandas().sort_values(C.ITEM_ID, ignore_index=True)
    )
    head = pads.dataset(lake.require(layout.input_dataset(C.INTERACTIONS), DS)).head(
        rows, [C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP]
    )
    cfg = ModelConfig(epochs=1, validation_share=0.0)  # the default model: the softmax towers
    model = fit_softmax_towers(users, items, head.to_pandas(), cfg)
    path = model.save(work / "models" / "bench-sample")
    write_serving(lake, DS, {"version": "bench-sample", "path": str(path)})


def als_reference(data: Path, work: Path, driver_memory: str) -> None:
    """Spark ALS, rank 32, implicit feedback, on every interaction; recommendForAllUsers(20) written out."""
    from pyspark.ml.recommendation import ALS

    from recsys_core.config import SparkConfig
    from recsys_core.spark import spark_session

    spark = spark_session(SparkConfig(driver_memory=driver_memory), "recsys-bench-als")
    inter = spark.read.parquet(str(data / C.INTERACTIONS))
    als = ALS(
        rank=ALS_RANK,
        maxIter=ALS_MAX_ITER,
        regParam=ALS_REG,
        implicitPrefs=True,
        alpha=ALS_ALPHA,
        userCol=C.USER_ID,
        itemCol=C.ITEM_ID,
        ratingCol=C.RATING,
        coldStartStrategy="drop",
        seed=ALS_SEED,
    )
    model = als.fit(inter)
    model.recommendForAllUsers(ALS_TOP_N).write.mode("overwrite").parquet(
        str(work / "als_recommendations")
    )


def print_scale(report: dict) -> None:
    counts, stages = report["sizes"]["counts"], report["stages"]
    print(
        f"{counts[C.USERS]:,} users, {counts[C.ITEMS]:,} items, {counts[C.INTERACTIONS]:,} interactions"
        + (
            f" (generated in {report['sizes']['generate_seconds']:.0f}s)"
            if report["sizes"]["generate_seconds"]
            else ""
        )
    )
    print(f"{'stage':<22}{'seconds':>9}{'peak RSS MB':>13}  rows out")
    for name, r in stages.items():
        print(
            f"{name:<22}{r['seconds']:>9.1f}{r['peak_rss_mb']:>13,.0f}  {r.get('rows_out') or ''}"
            + ("  (earlier run)" if r.get("earlier_run") else "")
        )
    if not all(s in stages for s in SERVING):
        return
    serving = sum(stages[s]["seconds"] for s in SERVING)
    print(
        f"retrieval + ranking: {serving:.1f}s, {counts[C.USERS] / serving:,.0f} users/s, peak RSS "
        f"{max(stages[s]['peak_rss_mb'] for s in SERVING):,.0f} MB"
    )
    if "als_reference" in stages:
        als = stages["als_reference"]["seconds"]
        print(
            f"ALS reference (fit + recommendForAllUsers): {als:.1f}s; retrieval + ranking take "
            f"{serving / als:.2f}x its time ({als / serving:.2f}x faster)"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="helpers of `recsys bench scale`, each run in its own process"
    )
    sub = p.add_subparsers(dest="what", required=True)
    t = sub.add_parser("train-sample")
    t.add_argument("--work", type=Path, required=True)
    t.add_argument("--rows", type=int, default=TRAIN_SAMPLE_ROWS)
    a = sub.add_parser("als")
    a.add_argument("--data", type=Path, required=True)
    a.add_argument("--work", type=Path, required=True)
    a.add_argument("--driver-memory", default=DRIVER_MEMORY)
    args = p.parse_args(argv)
    if args.what == "train-sample":
        train_on_sample(args.work, args.rows)
    else:
        als_reference(args.data, args.work, args.driver_memory)
    return 0


if __name__ == "__main__":
    sys.exit(main())
