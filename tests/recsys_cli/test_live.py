"""What `recsys run` shows while a DagRun goes on, read from the files the jobs write."""

import io
import json
import subprocess
import sys

from recsys_cli import live
from recsys_core.io import layout


def write_progress(steps_dir, step, detail, started_at="2026-01-31T02:00:00+00:00"):
    path = steps_dir / f"{step}{layout.STEP_PROGRESS_SUFFIX}"
    path.write_text(json.dumps({"step": step, "started_at": started_at, "detail": detail}))
    return path


def write_record(steps_dir, step, **record):
    (steps_dir / f"{step}.json").write_text(json.dumps({"step": step, **record}))


def test_states_and_plain_lines_follow_the_files_as_steps_start_progress_and_end(
    tmp_path, monkeypatch
):
    steps = ("validate_inputs", "train_towers", "publish")
    monkeypatch.setattr(live, "DETAIL_SECONDS", 0.0)
    out = io.StringIO()
    lines = live.PlainLines(out)

    lines.update(live.step_states(tmp_path, steps))
    assert out.getvalue() == ""  # nothing started yet
    progress = write_progress(tmp_path, "validate_inputs", "")
    states = live.step_states(tmp_path, steps, now=1_769_824_810.0)  # 10 s after started_at
    assert [s.status for s in states] == ["running", "waiting", "waiting"]
    assert states[0].seconds == 10.0
    lines.update(states)
    progress.unlink()
    write_record(
        tmp_path, "validate_inputs", status="success", seconds=3.25, rows_out={"users": 1200}
    )
    write_progress(tmp_path, "train_towers", "epoch 1/3: 256/1,000 examples")
    lines.update(live.step_states(tmp_path, steps))
    write_progress(tmp_path, "train_towers", "epoch 2/3: 256/1,000 examples")
    lines.update(live.step_states(tmp_path, steps))
    lines.update(live.step_states(tmp_path, steps))  # no change: no line
    (tmp_path / f"train_towers{layout.STEP_PROGRESS_SUFFIX}").unlink()  # as run_job ends a step
    write_record(tmp_path, "train_towers", status="failed", seconds=9.0, error="ValueError: bad")
    lines.update(live.step_states(tmp_path, steps))
    shown = [line.split(" ", 3)[3] for line in out.getvalue().splitlines()]  # without the time
    assert shown == [
        "validate_inputs: started",
        "validate_inputs: success in 3.2s  users=1,200",
        "train_towers: started",
        "train_towers: epoch 1/3: 256/1,000 examples",
        "train_towers: epoch 2/3: 256/1,000 examples",
        "train_towers: failed in 9.0s  ValueError: bad",
    ]


def test_plain_lines_show_a_running_steps_progress_at_most_every_detail_seconds(tmp_path):
    out = io.StringIO()
    lines = live.PlainLines(out)  # DETAIL_SECONDS: 30
    for batch in range(5):
        write_progress(tmp_path, "train_towers", f"epoch 1/3: batch {batch}")
        lines.update(live.step_states(tmp_path, ("train_towers",)))
    shown = out.getvalue().splitlines()
    assert len(shown) == 2 and shown[1].endswith("train_towers: epoch 1/3: batch 0")


def test_watch_returns_the_runs_exit_code_once_it_ends(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time, sys; time.sleep(1.5); sys.exit(3)"]
    )
    assert live.watch(proc, tmp_path, ("publish",), "run", live=False) == 3


def test_generate_reports_each_table_and_its_chunks_and_the_cli_prints_them(tmp_path, capsys):
    from recsys_cli.main import main
    from recsys_core.datasets.generate import generate_dataset

    heard: list[str] = []
    counts = generate_dataset(
        tmp_path / "a", users=300, items=50, interactions=5000, report=heard.append
    )
    assert heard[:2] == ["items: 50 rows written", "users: 300 rows written"]
    assert heard[-1] == f"interactions: {counts['interactions']:,} rows written"
    chunks = [line for line in heard if "chunk" in line]
    assert chunks and chunks[0].startswith("interactions: chunk 1/")
    assert main(["generate", "--out", str(tmp_path / "b"), "--users", "300", "--items", "50"]) == 0
    out = capsys.readouterr().out
    assert "items: 50 rows written" in out and "interactions: 14,700 rows written" in out
    assert "wrote {'users': 300, 'items': 50, 'interactions': 14700}" in out


def test_plain_reporter_prints_at_most_every_few_seconds_but_always_a_tables_completion(capsys):
    with live.reporter(False) as say:
        for chunk in range(100):
            say(f"interactions: chunk {chunk + 1}/100, {chunk * 10} of 1,000 rows so far")
        say("interactions: 1,000 rows written")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].endswith("chunk 1/100, 0 of 1,000 rows so far")
    assert lines[1].endswith("interactions: 1,000 rows written")


def test_a_retry_shows_running_although_the_failed_attempt_left_its_record(tmp_path):
    write_record(
        tmp_path,
        "publish",
        status="failed",
        seconds=3.0,
        error="TransientError: refused",
        ended_at="2026-01-31T02:10:00+00:00",
    )
    assert live.step_states(tmp_path, ("publish",))[0].status == "failed"
    write_progress(tmp_path, "publish", "", started_at="2026-01-31T02:12:00+00:00")  # the retry
    assert live.step_states(tmp_path, ("publish",))[0].status == "running"


def test_watch_stops_the_run_when_the_view_fails(tmp_path, monkeypatch):
    """A fault while showing the run (or Ctrl-C) must not leave `airflow dags test` running alone."""
    import pytest

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(live, "step_states", broken)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(KeyboardInterrupt):
        live.watch(proc, tmp_path, ("publish",), "run", live=False)
    assert proc.poll() is not None
