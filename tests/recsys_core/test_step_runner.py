"""A job records its outcome under the lake and maps bad input to the no-retry exit code."""

import json

import pytest

from recsys_core.errors import (
    EXIT_TRANSIENT,
    EXIT_USER_ERROR,
    ConfigError,
    MissingInputError,
    TransientError,
)
from recsys_core.io import layout
from recsys_core.step_runner import parse_args, run_job


def _record(work, ds, name):
    return json.loads(
        (work / "lake" / layout.STEP_RECORDS / f"ds={ds}" / f"{name}.json").read_text()
    )


def test_success_records_rows_and_seconds(tmp_path):
    code = run_job(
        "demo_step",
        lambda ctx: {"rows_out": {"x": 3}},
        ["--ds", "2026-01-02", "--work", str(tmp_path)],
    )
    rec = _record(tmp_path, "2026-01-02", "demo_step")
    assert code == 0
    assert rec["status"] == "success" and rec["rows_out"] == {"x": 3} and rec["seconds"] >= 0


def test_bad_input_exits_with_user_error_code_and_records_the_message(tmp_path):
    def body(ctx):
        raise MissingInputError("input table 'users' not found")

    code = run_job("demo_step", body, ["--ds", "2026-01-02", "--work", str(tmp_path)])
    rec = _record(tmp_path, "2026-01-02", "demo_step")
    assert code == EXIT_USER_ERROR
    assert (
        rec["status"] == "failed"
        and "MissingInputError: input table 'users' not found" in rec["error"]
    )


def test_unexpected_failure_exits_1_so_the_scheduler_retries(tmp_path):
    def body(ctx):
        raise OSError("disk full")

    assert run_job("demo_step", body, ["--ds", "2026-01-02", "--work", str(tmp_path)]) == 1


def test_a_passing_fault_exits_with_the_transient_code_and_records_it(tmp_path):
    def body(ctx):
        raise TransientError("cannot connect to warehouse postgresql://w@db:5432/recsys: refused")

    code = run_job("demo_step", body, ["--ds", "2026-01-02", "--work", str(tmp_path)])
    assert code == EXIT_TRANSIENT != EXIT_USER_ERROR
    assert "TransientError: cannot connect" in _record(tmp_path, "2026-01-02", "demo_step")["error"]


def test_bad_ds_is_a_user_error(tmp_path):
    assert (
        run_job("demo_step", lambda ctx: {}, ["--ds", "2026-13-40", "--work", str(tmp_path)])
        == EXIT_USER_ERROR
    )


def test_environment_supplies_what_the_dag_passes(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "in"))
    monkeypatch.setenv("RECSYS_WORK_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("RECSYS_SETTINGS", "ranking.top_n=7\nretrieval.country_items=5")
    monkeypatch.setenv("RECSYS_RUN_ID", "scheduled__x")
    ctx = parse_args(["--ds", "2026-01-02"], "t")
    assert ctx.data_dir == tmp_path / "in" and ctx.work_dir == tmp_path / "w"
    assert ctx.config.ranking.top_n == 7 and ctx.config.retrieval.country_items == 5
    assert ctx.run_id == "scheduled__x"
    assert ctx.warehouse_url == f"duckdb://{tmp_path / 'w' / 'warehouse.duckdb'}"


def test_invalid_override_from_the_dag_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_SETTINGS", "ranking.top_k=7")
    with pytest.raises(ConfigError, match="unknown key ranking.top_k"):
        parse_args(["--ds", "2026-01-02", "--work", str(tmp_path)], "t")


def test_warehouse_url_from_config_unless_a_flag_overrides_it(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_SETTINGS", "warehouse.url=postgresql://u@127.0.0.1:5432/wh")
    monkeypatch.delenv("RECSYS_WAREHOUSE_URL", raising=False)
    assert (
        parse_args(["--ds", "2026-01-02", "--work", str(tmp_path)], "t").warehouse_url
        == "postgresql://u@127.0.0.1:5432/wh"
    )
    flagged = parse_args(
        ["--ds", "2026-01-02", "--work", str(tmp_path), "--warehouse", "duckdb:///x.duckdb"], "t"
    )
    assert flagged.warehouse_url == "duckdb:///x.duckdb"


def test_the_triggers_settings_win_over_the_deployments(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DEPLOYMENT_SETTINGS", "ranking.top_n=7\nmodel.epochs=9")
    monkeypatch.setenv("RECSYS_SETTINGS", "ranking.top_n=3")
    cfg = parse_args(["--ds", "2026-01-02", "--work", str(tmp_path)], "t").config
    assert (cfg.ranking.top_n, cfg.model.epochs) == (3, 9)


def test_a_ds_after_tomorrow_is_refused_before_the_step_runs(tmp_path):
    ran = []
    code = run_job("demo_step", ran.append, ["--ds", "2099-12-31", "--work", str(tmp_path)])
    assert code == EXIT_USER_ERROR and not ran
    assert (
        "TriggerError: ds 2099-12-31 lies after"
        in _record(tmp_path, "2099-12-31", "demo_step")["error"]
    )


@pytest.mark.parametrize(
    "env",
    [
        {"RECSYS_WAREHOUSE_URL": "postgresql://writer:Canary-7f3e@db:5432/recsys"},
        {"AIRFLOW_CONN_RECSYS_WAREHOUSE": "postgresql://writer:Canary-7f3e@db:5432/recsys"},
        {
            "AIRFLOW_CONN_RECSYS_WAREHOUSE": json.dumps(
                {
                    "conn_type": "postgresql",
                    "login": "writer",
                    "password": "Canary-7f3e",
                    "host": "db",
                    "port": 5432,
                    "schema": "recsys",
                }
            )
        },
    ],
)
def test_no_record_log_or_traceback_of_a_failed_job_shows_the_warehouse_password(
    tmp_path, monkeypatch, capsys, caplog, env
):
    for name in ("RECSYS_WAREHOUSE_URL", "AIRFLOW_CONN_RECSYS_WAREHOUSE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen = []

    def body(ctx):
        seen.append(ctx.warehouse_url)
        raise RuntimeError(f"could not reach {ctx.warehouse_url}")  # a library quoting the URL

    caplog.set_level("INFO")
    assert run_job("demo_step", body, ["--ds", "2026-01-02", "--work", str(tmp_path)]) == 1
    assert seen == ["postgresql://writer:Canary-7f3e@db:5432/recsys"]  # the job had it
    record = tmp_path / "lake" / layout.STEP_RECORDS / "ds=2026-01-02" / "demo_step.json"
    out = capsys.readouterr()
    for text in (record.read_text(), out.out, out.err, caplog.text):
        assert "Canary-7f3e" not in text
    assert "writer:***@db:5432" in record.read_text()
