"""`recsys bench similarity` on a small catalogue: every method runs, figures are printed, and the
kernel finds FAISS's exact neighbours (speed is printed, never asserted)."""

import json

import numpy as np

from recsys_cli.bench import unit_vectors
from recsys_cli.main import main


def test_bench_similarity_prints_figures_and_agrees_with_faiss(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "similarity", "--items", "3000", "--dim", "16", "--k", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for method in ("kernel", "faiss", "matmul"):
        assert method in printed
    assert "vs FAISS" in printed and "peak RSS MB" in printed
    report = json.loads(out.read_text())
    assert report["same_neighbours_as_faiss"] > 0.999
    for r in report["methods"].values():
        assert r["seconds"] > 0 and r["peak_rss_mb"] >= r["rss_before_mb"] > 0


def test_bench_inputs_are_seeded_unit_vectors():
    a, b = unit_vectors(50, 8, seed=1), unit_vectors(50, 8, seed=1)
    assert np.array_equal(a, b) and np.allclose(np.linalg.norm(a, axis=1), 1, atol=1e-6)
