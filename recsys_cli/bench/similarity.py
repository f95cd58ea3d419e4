"""`recsys bench similarity`: the top-k kernel against exact FAISS and a bare matrix product.

Two exact FAISS references: IndexFlatL2 (squared distances, what the kernel returns) and IndexFlatIP
(inner products: for unit vectors the same neighbours, by the largest v_m . v_n, and the fastest exact
index for them).

Each method runs in its own child process on the same seeded random unit vectors, so its peak
resident memory (ru_maxrss) is its own; the vectors are generated before the clock starts.
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

from recsys_cli.bench.commands import (
    SIMILARITY_DIM,
    SIMILARITY_ITEMS,
    SIMILARITY_K,
    SIMILARITY_SEED,
)
from recsys_cli.bench.measure import peak_rss_mb

METHODS = ("kernel", "faiss", "faiss_ip", "matmul")
FAISS_METHODS = ("faiss", "faiss_ip")
# query rows per bare product: the kernel's default block (top_k_neighbors), so both run the
# same products
MATMUL_BLOCK = 1024
ERROR_TAIL_CHARS = 2000  # of a failed child's stderr in the error: where the traceback ends


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def run_method(method: str, n: int, dim: int, k: int, seed: int, out: Path | None) -> dict:
    x = unit_vectors(n, dim, seed)
    if method in FAISS_METHODS:
        import faiss  # imported before the clock, as numpy is
    base = peak_rss_mb()
    start = time.perf_counter()
    idx = None
    if method == "kernel":
        from recsys_core.candidates.similarity import top_k_neighbors

        idx, _ = top_k_neighbors(x, k)
    elif method in FAISS_METHODS:
        index = faiss.IndexFlatL2(dim) if method == "faiss" else faiss.IndexFlatIP(dim)
        index.add(x)
        _, found = index.search(x, k + 1)  # exact; the query itself comes first
        idx = found[:, 1:]
    elif method == "matmul":
        # the floating-point work alone: every score, in the same blocks, nothing selected
        block = np.empty((MATMUL_BLOCK, n), dtype=np.float32)
        for s in range(0, n, MATMUL_BLOCK):
            np.matmul(x[s : s + MATMUL_BLOCK], x.T, out=block[: len(x[s : s + MATMUL_BLOCK])])
    else:
        raise ValueError(f"unknown method {method!r}; one of {METHODS}")
    seconds = time.perf_counter() - start
    if out is not None and idx is not None:
        np.save(out, idx)
    return {
        "method": method,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": base,
    }


def bench_similarity(
    n: int = SIMILARITY_ITEMS,
    dim: int = SIMILARITY_DIM,
    k: int = SIMILARITY_K,
    seed: int = SIMILARITY_SEED,
) -> dict:
    """Time every method in a child process; compare the kernel's neighbors with FAISS's."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in METHODS:
            out = Path(tmp) / f"{method}.npy"
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "recsys_cli.bench.similarity",
                    method,
                    "--items",
                    str(n),
                    "--dim",
                    str(dim),
                    "--k",
                    str(k),
                    "--seed",
                    str(seed),
                    "--out",
                    str(out),
                ],
                capture_output=True,
                text=True,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"bench {method} failed: {proc.stderr[-ERROR_TAIL_CHARS:]}")
            results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
        found = {m: np.load(Path(tmp) / f"{m}.npy") for m in ("kernel", *FAISS_METHODS)}
    same = {m: float((found["kernel"] == found[m]).mean()) for m in FAISS_METHODS}
    return {
        "items": n,
        "dim": dim,
        "k": k,
        "methods": results,
        "same_neighbors_as_faiss": same["faiss"],
        "same_neighbors_as_faiss_ip": same["faiss_ip"],
    }


def bench_similarity_job(
    n: int, dim: int, k: int, seed: int, work: Path, driver_memory: str
) -> dict:
    """The item_similarity Spark job (python -m jobs.item_similarity) on n random unit vectors written as
    one ds's item embeddings: its seconds and the peak memory of its whole process tree."""
    from recsys_cli.bench.measure import measured
    from recsys_cli.bench.scale import DS
    from recsys_core import columns as C
    from recsys_core.io import layout as L
    from recsys_core.io.lake import Lake
    from recsys_core.model.embeddings import embedding_table

    lake = Lake(work / "lake")
    embeddings = embedding_table(
        np.arange(n, dtype=np.int64), C.ITEM_ID, unit_vectors(n, dim, seed)
    )
    lake.write_table(embeddings, L.ITEM_EMBEDDINGS, DS)
    result = measured(
        [
            sys.executable,
            "-m",
            "jobs.item_similarity",
            "--ds",
            DS,
            "--work",
            str(work),
            "--set",
            f"similarity.k={k}",
            "--set",
            f"retrieval.similar_per_item={k}",
            "--set",
            f"spark.driver_memory={driver_memory}",
        ],
        work / "item_similarity.log",
    )
    if result["returncode"] != 0:
        raise RuntimeError(f"item_similarity failed; see {work / 'item_similarity.log'}")
    rows = lake.count_rows(L.ITEM_NEIGHBORS, DS)
    return {**result, "items": n, "rows_out": rows}


def print_similarity(report: dict) -> None:
    m = report["methods"]
    print(
        f"top-{report['k']} neighbors of {report['items']:,} random unit vectors, dimension {report['dim']}"
    )
    print(
        f"{'method':<10}{'seconds':>9}{'peak RSS MB':>13}{'vs FAISS L2':>13}{'vs FAISS IP':>13}"
        f"{'vs matmul':>11}"
    )
    for name in METHODS:
        r = m[name]
        print(
            f"{name:<10}{r['seconds']:>9.2f}{r['peak_rss_mb']:>13.0f}"
            f"{r['seconds'] / m['faiss']['seconds']:>12.2f}x{r['seconds'] / m['faiss_ip']['seconds']:>12.2f}x"
            f"{r['seconds'] / m['matmul']['seconds']:>10.2f}x"
        )
    print(
        f"kernel neighbors identical to FAISS L2's: {report['same_neighbors_as_faiss']:.5%}, to FAISS "
        f"IP's: {report['same_neighbors_as_faiss_ip']:.5%} (the rest: float32 near-ties ordered "
        "differently)"
    )
    job = report.get("spark_job")
    if job:
        print(
            f"Spark job item_similarity on {job['items']:,} items: {job['seconds']:.1f}s, peak RSS of its "
            f"process tree {job['peak_rss_mb']:,.0f} MB, {job['rows_out']:,} neighbor rows"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="one similarity benchmark method, in this process")
    p.add_argument("method", choices=METHODS)
    p.add_argument("--items", type=int, default=SIMILARITY_ITEMS)
    p.add_argument("--dim", type=int, default=SIMILARITY_DIM)
    p.add_argument("--k", type=int, default=SIMILARITY_K)
    p.add_argument("--seed", type=int, default=SIMILARITY_SEED)
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    print(json.dumps(run_method(a.method, a.items, a.dim, a.k, a.seed, a.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
