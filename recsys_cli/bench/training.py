"""`recsys bench training`: the towers trained from the Parquet example stream against the plain
`model.fit` on in-memory arrays of SEED.md, same architecture, batch size and examples.

Each method runs in its own child process, so its peak resident memory (ru_maxrss) is its own. The
features and examples are written to Parquet before any clock starts; both methods read them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from recsys_cli.bench.commands import TRAINING_BATCH_SIZE, TRAINING_ITEMS, TRAINING_USERS
from recsys_cli.bench.measure import peak_rss_mb

METHODS = ("in_memory", "stream")
USER_FEATURES, ITEM_FEATURES = (
    46,
    24,
)  # the widths the pipeline's feature tables have with 18 genres
EXAMPLE_CHUNK_ROWS = 1 << 22  # examples generated and written at a time: bounds the writer's memory
# share of positive labels: one interaction in 1 + model.negatives (4 by default) examples
POSITIVE_SHARE = 0.2
SEED = 0
ERROR_TAIL_CHARS = 2000  # of a failed child's stderr in the error: where the traceback ends


def write_data(folder: Path, users: int, items: int, examples: int, seed: int) -> None:
    from recsys_core.model.input_pipeline import write_examples

    rng = np.random.default_rng(seed)
    np.save(folder / "users.npy", rng.normal(size=(users, USER_FEATURES)))
    np.save(folder / "items.npy", rng.normal(size=(items, ITEM_FEATURES)))
    step = EXAMPLE_CHUNK_ROWS

    def chunks():
        for s in range(0, examples, step):
            n = min(step, examples - s)
            yield (
                rng.integers(0, users, n),
                rng.integers(0, items, n),
                (rng.random(n) < POSITIVE_SHARE).astype(np.float32),
            )

    write_examples(chunks(), folder / "examples.parquet", validation_share=0.0, seed=seed)


def run_method(method: str, folder: Path, batch_size: int) -> dict:
    import dataclasses

    import keras

    from recsys_core.config import ModelConfig
    from recsys_core.model.input_pipeline import ParquetExamples
    from recsys_core.model.network import build_model
    from recsys_core.model.training import fit_towers_on

    cfg = dataclasses.replace(ModelConfig(), epochs=1, batch_size=batch_size, validation_share=0.0)
    xu, xi = np.load(folder / "users.npy"), np.load(folder / "items.npy")
    before = peak_rss_mb()
    if method == "in_memory":
        import pyarrow.parquet as pq

        t = pq.read_table(folder / "examples.parquet")
        u, i, y = (t.column(c).to_numpy() for c in ("user_pos", "item_pos", "target"))
        keras.utils.set_random_seed(cfg.seed)
        model = build_model(xu.shape[1], xi.shape[1], cfg)
        # SEED.md: model.fit on whole arrays of feature rows, one per example; only the fit is timed
        xu_rows, xi_rows = xu[u].astype(np.float32), xi[i].astype(np.float32)
        start = time.perf_counter()
        history = model.fit(
            [xu_rows, xi_rows], y, epochs=1, batch_size=batch_size, shuffle=True, verbose=0
        )
        rows, loss = len(y), history.history["loss"][-1]
    elif (
        method == "stream"
    ):  # timed whole: the pass over the examples, the scalers, the model, the fit
        start = time.perf_counter()
        model = fit_towers_on(xu, xi, ParquetExamples(folder / "examples.parquet"), cfg)
        rows, loss = model.meta["metrics"]["train_rows"], model.meta["metrics"]["loss"][-1]
    else:
        raise ValueError(f"unknown method {method!r}; one of {METHODS}")
    seconds = time.perf_counter() - start
    return {
        "method": method,
        "examples": int(rows),
        "seconds": seconds,
        "examples_per_second": rows / seconds,
        "loss": float(loss),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
    }


def bench_training(
    sizes: list[int],
    users: int = TRAINING_USERS,
    items: int = TRAINING_ITEMS,
    batch_size: int = TRAINING_BATCH_SIZE,
    seed: int = SEED,
    repeat: int = 1,
) -> dict:
    """Both methods at each number of examples, each in a child process, alternated `repeat` times
    (the median run of each is reported: a shared machine's speed drifts between runs)."""
    runs = []
    for examples in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            write_data(Path(tmp), users, items, examples, seed)
            tries: dict[str, list[dict]] = {m: [] for m in METHODS}
            for method in [m for _ in range(repeat) for m in METHODS]:
                proc = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "recsys_cli.bench.training",
                        method,
                        "--folder",
                        tmp,
                        "--batch-size",
                        str(batch_size),
                    ],
                    capture_output=True,
                    text=True,
                )
                if proc.returncode != 0:
                    raise RuntimeError(
                        f"bench training {method} failed: {proc.stderr[-ERROR_TAIL_CHARS:]}"
                    )
                tries[method].append(json.loads(proc.stdout.strip().splitlines()[-1]))
            for done in tries.values():
                median = sorted(done, key=lambda r: r["seconds"])[len(done) // 2]
                runs.append({**median, "all_seconds": [round(r["seconds"], 2) for r in done]})
    return {
        "users": users,
        "items": items,
        "batch_size": batch_size,
        "repeat": repeat,
        "runs": runs,
    }


def print_training(report: dict) -> None:
    print(
        f"one epoch of the two towers (256-128-32 each), batch {report['batch_size']}, "
        f"{report['users']:,} users x {report['items']:,} items of random features; "
        f"median of {report['repeat']} alternated runs"
    )
    print(
        f"{'examples':>11}  {'method':<10}{'seconds':>9}{'examples/s':>12}{'peak RSS MB':>13}{'vs in-memory':>14}"
    )
    by_size: dict[int, dict] = {}
    for r in report["runs"]:
        by_size.setdefault(r["examples"], {})[r["method"]] = r
    for examples, runs in by_size.items():
        for name in METHODS:
            r = runs[name]
            speed = r["examples_per_second"] / runs["in_memory"]["examples_per_second"]
            print(
                f"{examples:>11,}  {name:<10}{r['seconds']:>9.1f}{r['examples_per_second']:>12,.0f}"
                f"{r['peak_rss_mb']:>13,.0f}{speed:>13.2f}x"
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one training benchmark method, in this process")
    p.add_argument("method", choices=METHODS)
    p.add_argument("--folder", type=Path, required=True)
    p.add_argument("--batch-size", type=int, default=TRAINING_BATCH_SIZE)
    a = p.parse_args(argv)
    print(json.dumps(run_method(a.method, a.folder, a.batch_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
