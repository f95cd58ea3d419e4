"""Every path of a work folder comes from one place, partitioned by ds."""

from pathlib import Path

from recsys_core.io import layout


def test_work_folder_paths_are_keyed_by_ds_under_their_rooms():
    work = layout.WorkDir(Path("/w"))
    assert work.step_record("2026-01-31", "publish") == Path(
        "/w/lake/_steps/ds=2026-01-31/publish.json"
    )
    assert work.report("2026-01-31") == Path("/w/reports/ds=2026-01-31/report.html")
    assert work.data_docs("2026-01-31") == Path(
        "/w/lake/validation/ds=2026-01-31/gx/uncommitted/data_docs/local_site/index.html"
    )
    assert work.model_evaluation("m1", "2026-01-31") == Path(
        "/w/models/m1/evaluations/ds=2026-01-31.json"
    )
    assert work.tradeoff_plot == Path("/w/evaluation/tradeoff.png")


def test_input_snapshots_live_under_inputs_by_table():
    assert layout.input_dataset("users") == "inputs/users"
