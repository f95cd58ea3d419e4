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

    # --json: the same lists for programs
    import json

    assert main(["recommend", "--user", "7", "--user", "8", "--warehouse", url, "--json"]) == 0
    users = json.loads(capsys.readouterr().out)
    assert [u["user_id"] for u in users] == [7, 8] and users[1]["items"] == []
    assert (users[0]["ds"], users[0]["model_version"]) == ("2026-01-31", "m1")
    assert [(r["rank"], r["item_id"], r["title"]) for r in users[0]["items"]] == [
        (1, 2, "Beta"),
        (2, 3, "Gamma"),
    ]
    assert users[0]["items"][0]["why"] == "similar to Alpha"
    assert users[0]["items"][0]["score"] == 0.9
    assert main(["similar", "--item", "1", "--warehouse", url, "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert (found["title"], found["ds"]) == ("Alpha", "2026-01-31")
    assert [(n["item_id"], n["distance"]) for n in found["neighbors"]] == [(3, 0.1), (2, 0.2)]
    assert main(["similar", "--item", "99", "--warehouse", url, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["neighbors"] == []


def test_report_json_names_the_newest_report_and_its_ds(tmp_path, capsys):
    import json

    for ds in ("2026-01-30", "2026-01-31"):
        folder = tmp_path / "reports" / f"ds={ds}"
        folder.mkdir(parents=True)
        (folder / "report.html").write_text("<html></html>")
    assert main(["report", "--work", str(tmp_path), "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["ds"] == "2026-01-31"
    assert found["report"] == str(tmp_path.resolve() / "reports" / "ds=2026-01-31" / "report.html")
    assert main(["report", "--work", str(tmp_path), "--ds", "2026-01-30", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ds"] == "2026-01-30"


def test_version_is_the_installed_distributions(capsys):
    from importlib.metadata import version

    import pytest

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"recsys {version('recsys-nightly')}"


def test_log_level_reaches_the_jobs_through_the_environment(tmp_path, monkeypatch):
    """`--log-level` (or RECSYS_LOG_LEVEL) sets the level of the command and of the jobs its runs
    start: a job at WARNING writes none of its INFO lines."""
    import os
    import subprocess
    import sys

    from recsys_core.step_runner import LOG_LEVEL_ENV

    monkeypatch.setenv(LOG_LEVEL_ENV, "error")
    assert parser().parse_args(["report"]).log_level == "ERROR"  # the variable is the default
    main(["--log-level", "warning", "report", "--work", str(tmp_path)])
    assert os.environ[LOG_LEVEL_ENV] == "WARNING"
    outputs = {}
    for level in ("INFO", "WARNING"):
        job = subprocess.run(
            [sys.executable, "-m", "jobs.cleanup", "--ds", "2026-01-31"],
            capture_output=True,
            text=True,
            env={
                **os.environ,
                LOG_LEVEL_ENV: level,
                "RECSYS_WORK_DIR": str(tmp_path / "work"),
                "RECSYS_DATA_DIR": str(tmp_path / "data"),
            },
        )
        assert job.returncode == 0, job.stderr[-2000:]
        outputs[level] = job.stderr
    assert "INFO recsys: cleanup success" in outputs["INFO"]
    assert " INFO " not in outputs["WARNING"]


def test_bash_completion_offers_the_subcommands_and_options_of_the_path_typed(tmp_path):
    """The generated script, sourced by a real bash: `recsys be<TAB>` -> bench, `recsys bench n<TAB>`
    -> nightly, `recsys bench nightly --sp<TAB>` -> --spark-master, `recsys --v<TAB>` -> --version."""
    import shutil
    import subprocess

    import pytest

    from recsys_cli.completion import bash_script

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    script = tmp_path / "recsys.bash"
    script.write_text(bash_script(parser()))

    def complete(*words: str) -> list[str]:
        line = " ".join(("recsys", *words))
        probe = (
            f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; _recsys; "
            'printf "%s\\n" "${COMPREPLY[@]}"'
        )
        out = subprocess.run([bash, "-c", probe], capture_output=True, text=True, check=True)
        return out.stdout.split()

    assert complete("be") == ["bench"]
    assert complete("bench", "n") == ["nightly"]
    assert complete("bench", "nightly", "--sp") == ["--spark-master"]
    assert complete("--v") == ["--version"]
    assert complete("ingest", "") == ["movielens"]
    assert "--json" in complete("recommend", "--")


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
