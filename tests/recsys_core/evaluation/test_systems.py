"""The offline evaluation's systems and `recsys evaluate` on small data (the protocol itself: test_evaluation)."""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

from recsys_core import columns as C
from recsys_core.datasets.generate import generate_dataset
from recsys_core.evaluation import item_baselines
from recsys_core.evaluation import systems as offline

pytestmark = pytest.mark.spark
FAST = ["model.epochs=2", "spark.shuffle_partitions=2"]


def catalogue(train_rows):
    users = pd.DataFrame({C.USER_ID: [1, 2, 3], C.COUNTRY: ["US", "US", "unknown"]})
    items = pd.DataFrame(
        {
            C.ITEM_ID: [10, 20, 30, 40, 50],
            C.TITLE: list("abcde"),
            C.YEAR: [2000] * 5,
            C.GENRES: [["Drama"]] * 5,
        }
    )
    train = pd.DataFrame(train_rows, columns=[C.USER_ID, C.ITEM_ID, C.RATING, C.TIMESTAMP])
    return offline.Catalogue(users, items, train)


def test_popularity_orders_by_count_then_mean_then_id_and_skips_seen_items():
    cat = catalogue(
        [
            (1, 30, 5.0, 0),
            (2, 30, 4.0, 0),
            (3, 30, 3.0, 0),
            (1, 20, 2.0, 0),
            (2, 20, 2.0, 0),
            (2, 10, 2.0, 0),
            (3, 10, 2.0, 0),
            (3, 50, 4.0, 0),
        ]
    )
    recs = offline.popularity(cat, np.array([1, 2, 3]), k=4)
    got = recs.groupby(C.USER_ID)[C.ITEM_ID].apply(list).to_dict()
    # 30 (3x), then 10 and 20 (2x, same mean 2.0: lower id), then 50 (1x), then 40 (never)
    assert got[1] == [10, 50, 40]
    assert got[2] == [50, 40]
    assert got[3] == [20, 40]


def test_both_als_variants_fit_and_recommend_unseen_items(spark):
    rng = np.random.default_rng(0)
    rows = [
        (u, int(i), float(rng.integers(1, 6)), 0)
        for u in (1, 2, 3)
        for i in rng.choice([10, 20, 30, 40, 50], 3, replace=False)
    ]
    cat = catalogue(rows)
    seen = set((r[0], r[1]) for r in rows)
    for implicit in (False, True):
        factors = offline.als(spark, cat, rank=4, implicit=implicit, seed=1)
        assert factors.user_factors.shape == (3, 4) and factors.item_factors.shape == (5, 4)
        recs = factors.recommend(np.array([1, 2, 3]), cat.train, k=2)
        assert len(recs) == 6 and not seen & set(zip(recs[C.USER_ID], recs[C.ITEM_ID], strict=True))
    pairs = pd.DataFrame({C.USER_ID: [1, 99], C.ITEM_ID: [10, 10]})
    predicted = offline.als(spark, cat, rank=4, implicit=False, seed=1).predict_ratings(pairs)
    assert predicted[1] == pytest.approx(
        cat.train[C.RATING].mean()
    )  # unknown user: the training mean


def test_recsys_evaluate_writes_every_system_cold_start_and_the_tradeoff_curve(spark, tmp_path):
    from recsys_cli.main import main

    data = tmp_path / "data"
    generate_dataset(data, users=150, items=120, interactions=4500, seed=3)
    out, plot = tmp_path / "report.json", tmp_path / "tradeoff.png"
    args = ["evaluate", "--data", str(data), "--out", str(out), "--plot", str(plot), "--seeds", "2"]
    # the settings search (a dozen trainings) is left out here: the same tune() runs inside train_towers
    # in tests/jobs/test_gate_model.py, and its moves are tested in tests/recsys_core/model/test_tuning.py
    args += ["--no-tuning", "--no-warm-start"]
    assert main(args + [x for s in FAST for x in ("--set", s)]) == 0
    report = json.loads(out.read_text())
    assert set(report["systems"]) == {
        "pipeline",
        "towers",
        "towers_regression",
        "towers_classification",
        "popularity",
        "als_explicit",
        "als_implicit",
        "ease",
        "item_knn",
    }
    # the pipeline and the towers are the mean of two trainings, with their spread and each seed's own
    for name in ("pipeline", "towers"):
        figures = report["systems"][name]
        assert figures["seeds"] == 2 and len(figures["per_seed"]) == 2
        assert figures["ndcg@10"] == pytest.approx(
            sum(s["ndcg@10"] for s in figures["per_seed"]) / 2
        )
        assert figures["std"]["ndcg@10"] >= 0
    # the item-to-item baselines record the setting the validation split chose, from their grids
    assert report["systems"]["ease"]["reg"] in item_baselines.EASE_REGS
    assert report["systems"]["item_knn"]["neighbors"] in item_baselines.KNN_NEIGHBORS
    for name, m in report["systems"].items():
        for key in ("ndcg@10", "recall@10", "precision@10", "coverage"):
            assert 0 <= m[key] <= 1, (name, key)
        assert m["users"] == report["data"]["evaluated_users"] > 0 and m["seconds"] >= 0
    assert (
        "rmse" in report["systems"]["als_explicit"]
        and "rmse" not in report["systems"]["popularity"]
    )
    assert (
        0 < report["systems"]["towers_regression"]["rmse"] < 5
    )  # ratings are 0.5..5 in generated data
    # the softmax towers (the default) predict no rating
    assert "rmse" not in report["systems"]["pipeline"]
    assert report["systems"]["pipeline"]["candidate_recall"] > 0
    sizes = [row["candidates_per_user"] for row in report["tradeoff"]]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    recall = [row["candidate_recall"] for row in report["tradeoff"]]
    assert recall[-1] >= recall[0]  # more candidates can only cover more of the relevant items
    cold = report["cold_start"]
    assert cold["cold_items"] > 0 and 0 <= cold["towers"]["share_of_slots"] <= 1
    assert set(cold["new_arrivals_shelf"]) == {"towers_cold_recall@10", "random_cold_recall@10"}
    # without the search the systems train the configured model, and the report says no search ran
    assert "tuning" not in report and report["config"]["model"]["epochs"] == 2
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        report["data"]["train_rows"] + report["data"]["test_rows"] == report["data"]["interactions"]
    )
    assert (
        "warm_start" not in report
    )  # --no-warm-start: tests/recsys_core/evaluation/test_warm_start.py
