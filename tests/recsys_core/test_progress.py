"""A running step's live progress: a file that says where the step is while it runs, and is gone when
its record says how it ended."""

import json

from recsys_core import progress
from recsys_core.io import layout
from recsys_core.step_runner import run_job


def test_a_note_replaces_the_detail_at_most_once_a_second_unless_forced(tmp_path, monkeypatch):
    path = tmp_path / "steps" / "train_towers.progress.json"
    assert progress.read(path) is None
    progress.note("before any step: nowhere to write")  # no step running: nothing, no error
    assert not path.exists()
    progress.begin(path, "train_towers")
    try:
        assert progress.read(path)["detail"] == "" and progress.active()
        progress.note("epoch 1/3: 256/1,000 examples", force=True)
        progress.note("epoch 1/3: 512/1,000 examples")  # within MIN_SECONDS: skipped
        assert progress.read(path)["detail"] == "epoch 1/3: 256/1,000 examples"
        monkeypatch.setattr(progress, "MIN_SECONDS", 0.0)
        progress.note("epoch 2/3: 256/1,000 examples")
        content = progress.read(path)
        assert (content["step"], content["detail"]) == (
            "train_towers",
            "epoch 2/3: 256/1,000 examples",
        )
        assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    finally:
        progress.end()
    assert not path.exists() and not progress.active()


def test_run_job_keeps_the_progress_file_while_the_body_runs_and_removes_it_after(tmp_path):
    ds = "2026-01-02"
    seen = {}

    def body(ctx):
        progress.note("halfway", force=True)
        seen.update(json.loads(ctx.work.step_progress(ds, "demo_step").read_text()))
        return {"rows_out": {"x": 1}}

    assert run_job("demo_step", body, ["--ds", ds, "--work", str(tmp_path)]) == 0
    work = layout.WorkDir(tmp_path.resolve())
    assert seen["step"] == "demo_step" and seen["detail"] == "halfway"
    assert not work.step_progress(ds, "demo_step").exists()
    assert json.loads(work.step_record(ds, "demo_step").read_text())["status"] == "success"
    # a failed body ends the same way: the record says so, no progress file is left
    assert run_job("bad_step", lambda ctx: 1 / 0, ["--ds", ds, "--work", str(tmp_path)]) == 1
    assert not work.step_progress(ds, "bad_step").exists()


def test_an_interrupt_leaves_no_progress_file_behind(tmp_path):
    """Ctrl-C (a BaseException) leaves run_job before any record is written: the progress goes too."""
    import pytest

    def interrupted(ctx):
        progress.note("about to be stopped", force=True)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job("stopped_step", interrupted, ["--ds", "2026-01-02", "--work", str(tmp_path)])
    work = layout.WorkDir(tmp_path.resolve())
    assert not work.step_progress("2026-01-02", "stopped_step").exists()
    assert not progress.active()
