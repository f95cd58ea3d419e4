"""The recsys command: readable reasons, a bad config refused before Airflow starts, every option's help."""

import argparse

from recsys_cli.main import main, parser
from recsys_cli.show import describe_reason


def test_reasons_read_as_sentences_with_titles():
    titles = {318: "The Shawshank Redemption"}
    text = describe_reason("similar_to:318; top_country:US; top_genre:Drama", titles)
    assert text == "similar to The Shawshank Redemption; popular in US; top in Drama"
    assert describe_reason("popular_fill:all", titles) == "popular"
    assert describe_reason("similar_to:5", titles) == "similar to 5"
    assert describe_reason("new; top_genre:Drama", titles) == "new arrival; top in Drama"


def test_run_refuses_an_invalid_config_without_starting_airflow(tmp_path, capsys):
    code = main(
        [
            "run",
            "--data",
            str(tmp_path),
            "--ds",
            "2026-01-01",
            "--work",
            str(tmp_path),
            "--airflow-home",
            str(tmp_path / "af"),
            "--set",
            "model.item_layers=[64,16]",
        ]
    )
    assert code == 2
    assert "same size" in capsys.readouterr().err
    assert not (tmp_path / "af").exists()


def test_run_refuses_a_bad_date(tmp_path, capsys):
    code = main(
        [
            "run",
            "--data",
            str(tmp_path),
            "--ds",
            "31-01-2026",
            "--work",
            str(tmp_path),
            "--airflow-home",
            str(tmp_path / "af"),
        ]
    )
    assert code == 2 and "YYYY-MM-DD" in capsys.readouterr().err


def test_recommend_and_similar_read_the_warehouse(tmp_path, capsys):
    import pyarrow as pa

    from recsys_core.publish.warehouse import open_warehouse

    url = f"duckdb://{tmp_path}/wh.duckdb"
    recs = pa.table(
        {
            "user_id": pa.array([7, 7], pa.int64()),
            "rank": pa.array([1, 2], pa.int32()),
            "item_id": pa.array([2, 3], pa.int64()),
            "score": [0.9, 0.5],
            "predicted_rating": [4.6, 3.9],
            "reason": ["similar_to:1", "top_genre:Drama"],
            "model_version": ["m1"] * 2,
            "run_id": ["r"] * 2,
        }
    )
    items = pa.table(
        {
            "item_id": pa.array([1, 2, 3], pa.int64()),
            "title": ["Alpha", "Beta", "Gamma"],
            "year": pa.array([2000] * 3, pa.int32()),
            "genres": [["Drama"]] * 3,
        }
    )
    neighbors = pa.table(
        {
            "item_id": pa.array([1, 1], pa.int64()),
            "rank": pa.array([1, 2], pa.int32()),
            "neighbor_id": pa.array([3, 2], pa.int64()),
            "distance": [0.1, 0.2],
        }
    )
    open_warehouse(url).publish(
        "2026-01-31",
        "r",
        {"recommendations": recs, "items": items, "item_neighbors": neighbors},
        "m1",
    )
    assert main(["recommend", "--user", "7", "--warehouse", url]) == 0
    out = capsys.readouterr().out
    assert (
        out.index("Beta") < out.index("Gamma")
        and "similar to Alpha" in out
        and "top in Drama" in out
    )
    assert main(["similar", "--item", "1", "--warehouse", url]) == 0
    out = capsys.readouterr().out
    assert "items like 1 Alpha" in out and out.index("Gamma") < out.index("Beta")


def test_run_summary_shows_the_gate_decision_and_why_a_model_was_rejected(tmp_path, capsys):
    import json

    from recsys_cli.airflow_run import print_summary

    (tmp_path / "gate_model.json").write_text(
        json.dumps(
            {
                "step": "gate_model",
                "status": "success",
                "seconds": 2.0,
                "rows_out": {},
                "blessed": False,
                "model_version": "m-old",
                "candidate_ndcg@10": 0.01234,
                "reason": "worse than the blessed model",
            }
        )
    )
    print_summary(tmp_path)
    out = capsys.readouterr().out
    assert "serving=m-old, new_model=REJECTED, ndcg@10=0.0123" in out
    assert "worse than the blessed model" in out
    assert "train_towers          not run" in out


def test_run_points_spark_default_at_the_configured_master_unless_the_environment_sets_it(
    tmp_path, monkeypatch
):
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    from recsys_cli.airflow_run import airflow_env

    monkeypatch.delenv("AIRFLOW_CONN_SPARK_DEFAULT", raising=False)
    assert (
        airflow_env(tmp_path)["AIRFLOW_CONN_SPARK_DEFAULT"]
        == airflow_env(tmp_path, "local[*]")["AIRFLOW_CONN_SPARK_DEFAULT"]
    )
    for master in ("local[*]", "local[2]", "spark://127.0.0.1:7077", "yarn"):
        # the Spark tasks' --master, as the provider's hook resolves the connection recsys run sets
        monkeypatch.delenv("AIRFLOW_CONN_SPARK_DEFAULT", raising=False)
        monkeypatch.setenv(
            "AIRFLOW_CONN_SPARK_DEFAULT",
            airflow_env(tmp_path, master)["AIRFLOW_CONN_SPARK_DEFAULT"],
        )
        assert SparkSubmitHook(conn_id="spark_default")._connection["master"] == master
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", "spark://spark-master:7077")
    assert (
        airflow_env(tmp_path, "local[*]")["AIRFLOW_CONN_SPARK_DEFAULT"]
        == "spark://spark-master:7077"
    )


def _commands(p: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command words, parser) of every subcommand under p, nested ones too (`bench scale`)."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def test_every_option_of_every_command_has_help_that_states_its_default():
    commands = dict(_commands(parser()))
    assert {("run",), ("ingest", "movielens"), ("bench", "scale"), ("ui",)} <= set(commands)
    checked = 0
    for words, sub in commands.items():
        formatter = sub._get_formatter()
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            name = f"recsys {' '.join(words)} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help.strip(), f"{name} has no help"
            if not action.required:  # a required option has no default to state
                assert "default" in formatter._get_help_string(action), (
                    f"{name}: its help does not state its default"
                )
            checked += 1
    assert checked > 50
