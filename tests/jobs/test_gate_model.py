"""The nightly gate with the real jobs: a worse model is trained and recorded but the blessed one serves."""

import importlib
import json

import pytest

from recsys_core.datasets.generate import generate_dataset
from recsys_core.step_runner import run_job

DS = "2026-01-31"
NEXT_DS = "2026-02-01"
# a larger held-out slice than the default, so a small data set judges models on enough users
GATE_SETTINGS = (
    "spark.shuffle_partitions=2",
    "evaluation.holdout_user_share=0.3",
    "evaluation.bless_margin=0",
)
pytestmark = pytest.mark.spark


def step(name, data, work, *settings, ds=DS):
    """Run one job in this process (its Spark steps on the tests' session), return its step record."""
    job = importlib.import_module(f"jobs.{name}")
    argv = ["--ds", ds, "--data", str(data), "--work", str(work)]
    for setting in (*GATE_SETTINGS, *settings):
        argv += ["--set", setting]
    assert run_job(name, job.body, argv) == 0
    record = json.loads((work / "lake" / "_steps" / f"ds={ds}" / f"{name}.json").read_text())
    assert record["status"] == "success", record
    return record


def test_a_worse_model_is_kept_out_of_serving_and_the_reason_recorded(tmp_path, spark):
    data, work = tmp_path / "data", tmp_path / "work"
    generate_dataset(data, users=300, items=200, interactions=9000, seed=5)
    for name in ("validate_inputs", "build_features", "validate_features"):
        step(name, data, work)
    good = ("model.epochs=3",)
    first = step("train_towers", data, work, *good)
    gate = step("gate_model", data, work, *good)
    assert gate["blessed"] is True and gate["model_version"] == first["model_version"]
    assert gate["candidate_ndcg@10"] > 0

    # a barely trained model: same data, so the slice and the features are the same
    bad = ("model.epochs=1", "model.learning_rate=1e-7")
    second = step("train_towers", data, work, *bad)
    assert second["model_version"] != first["model_version"]
    gate = step("gate_model", data, work, *bad)
    assert gate["blessed"] is False
    assert gate["candidate_ndcg@10"] < gate["blessed_ndcg@10"]
    assert "ranking with the blessed model" in gate["reason"]
    assert gate["model_version"] == first["model_version"]  # what the rest of the run uses
    ref = json.loads((work / "lake" / "model_ref" / f"ds={DS}" / "model.json").read_text())
    assert ref["version"] == first["model_version"]
    blessed = json.loads((work / "models" / "blessed.json").read_text())
    assert blessed["version"] == first["model_version"]
    # every run's metrics are stored with the model version it trained
    for version in (first["model_version"], second["model_version"]):
        stored = json.loads(
            (work / "models" / version / "evaluations" / f"ds={DS}.json").read_text()
        )
        assert (
            stored["candidate_version"] == version and stored["candidate_metrics"]["ndcg@10"] >= 0
        )
    # the next step ranks with the blessed model
    embedded = step("embed_items", data, work, *bad)
    assert embedded["model_version"] == first["model_version"]
    # a rerun on the same inputs trains the same version: its folder and evaluations are kept
    folder = work / "models" / first["model_version"]
    saved = (folder / "model.keras").stat().st_mtime_ns
    again = step("train_towers", data, work, *good)
    assert again["model_version"] == first["model_version"]
    assert (folder / "evaluations" / f"ds={DS}.json").exists()
    assert (folder / "model.keras").stat().st_mtime_ns == saved
    assert first["training"]["kind"] == "full" and "no blessed model" in first["training"]["reason"]

    # the next night starts from the blessed model; nothing is newer than its data, so it trains on
    # the replay of model.replay_share of the interactions
    for name in ("validate_inputs", "build_features", "validate_features"):
        step(name, data, work, ds=NEXT_DS)
    nightly = step("train_towers", data, work, *good, ds=NEXT_DS)
    training = nightly["training"]
    assert training["kind"] == "warm" and training["parent"] == first["model_version"]
    assert training["full_retrain_ds"] == DS and training["new_rows"] == 0
    assert 0 < nightly["training_examples"] < 0.2 * first["training_examples"]


def test_train_towers_with_tune_searches_first_and_records_the_choice_with_the_model(
    tmp_path, spark
):
    """model.tune (the DAG param tune_model): the settings search runs on the training interactions
    before training, the model trains with its winner, and the search is recorded in the step record
    and in the model's meta.json."""
    data, work = tmp_path / "data", tmp_path / "work"
    generate_dataset(data, users=120, items=60, interactions=2500, seed=7)
    for name in ("validate_inputs", "build_features", "validate_features"):
        step(name, data, work)
    # one training per trial (model.tune_seeds): the search's arithmetic over seeds is in test_tuning
    record = step(
        "train_towers", data, work, "model.epochs=2", "model.tune=true", "model.tune_seeds=1"
    )
    meta = json.loads((work / "models" / record["model_version"] / "meta.json").read_text())
    tuning = meta["tuning"]
    assert record["tuning"]["chosen"] == tuning["chosen"] and tuning["chosen"] in tuning["tried"]
    assert "configured" in tuning["tried"] and len(tuning["tried"]) >= 8
    assert tuning["seeds_per_trial"] == 1 and all(
        len(t["per_seed"]) == 1 for t in tuning["tried"].values()
    )
    # the model kept is the winner's: its epochs are what the chosen variant says (2 if configured)
    epochs = tuning["tried"][tuning["chosen"]]["changes"].get("epochs", 2)
    assert meta["config"]["epochs"] == epochs == len(meta["metrics"]["loss"])
