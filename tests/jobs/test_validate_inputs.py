"""validate_inputs: snapshots validated inputs for ds, drops and counts a few orphans, names broken files."""

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import validate_inputs
from recsys_core.datasets.generate import generate_dataset
from recsys_core.errors import EXIT_TRANSIENT, EXIT_USER_ERROR
from recsys_core.io import layout
from recsys_core.step_runner import run_job
from tests.damaged_inputs import DAMAGE_ERRORS, damaged_copy

DS = "2026-01-31"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("inputs")
    generate_dataset(out, users=50, items=30, interactions=500, seed=5)
    return out


def run(data, work, *extra, ds=DS):
    code = run_job(
        "validate_inputs",
        validate_inputs.body,
        ["--ds", ds, "--data", str(data), "--work", str(work), *extra],
    )
    record = json.loads(
        (work / "lake" / layout.STEP_RECORDS / f"ds={ds}" / "validate_inputs.json").read_text()
    )
    return code, record


def test_valid_inputs_are_snapshotted_for_ds(data, tmp_path):
    code, record = run(data, tmp_path)
    assert code == 0 and record["orphan_interactions_dropped"] == 0
    snap = pq.read_table(tmp_path / "lake" / "inputs" / "interactions" / f"ds={DS}")
    assert snap.num_rows == 500 and snap.schema.field("rating").type == pa.float32()


def test_a_few_orphans_are_dropped_and_counted(data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    t = pq.read_table(copy / "interactions")
    ids = t.column("item_id").to_numpy().copy()
    ids[:3] = [999_997, 999_998, 999_999]  # 3 of 500 = 0.6% < 1%
    shutil.rmtree(copy / "interactions")
    (copy / "interactions").mkdir()
    pq.write_table(t.set_column(1, "item_id", pa.array(ids)), copy / "interactions" / "p.parquet")
    code, record = run(copy, tmp_path / "work")
    assert code == 0 and record["orphan_interactions_dropped"] == 3
    assert record["rows_out"]["interactions"] == 497
    code, record = run(copy, tmp_path / "work2", "--set", "validation.max_orphan_share=0.001")
    assert code == EXIT_USER_ERROR and "expect_column_values_to_not_be_in_set" in record["error"]


def test_chunked_validation_snapshots_the_same_rows_in_the_same_order(data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    t = pq.read_table(copy / "interactions")
    ids = t.column("user_id").to_numpy().copy()
    ids[[10, 250, 490]] = 777_777  # 3 orphans of one unknown user, far apart in the file
    shutil.rmtree(copy / "interactions")
    (copy / "interactions").mkdir()
    pq.write_table(
        t.set_column(0, "user_id", pa.array(ids)),
        copy / "interactions" / "p.parquet",
        row_group_size=64,
    )
    snapshots = {}
    for name, extra in (("whole", ()), ("chunked", ("--set", "validation.chunk_rows=120"))):
        code, record = run(copy, tmp_path / name, *extra)
        assert (
            code == 0
            and record["orphan_interactions_dropped"] == 3
            and record["rows_in"]["interactions"] == 500
        )
        snapshots[name] = pq.read_table(
            tmp_path / name / "lake" / "inputs" / "interactions" / f"ds={DS}"
        )
        report = json.loads(
            (tmp_path / name / "lake" / "validation" / f"ds={DS}" / "interactions.json").read_text()
        )
        [orphans] = [
            r
            for r in report["results"]
            if r["type"].endswith("not_be_in_set") and r["kwargs"]["column"] == "user_id"
        ]
        assert orphans["result"]["unexpected_count"] == 3 and orphans["kwargs"]["value_set"] == [
            777_777
        ]
        snapshots[name + " chunks"] = report["chunks"]
    assert snapshots["whole chunks"] == 1 and snapshots["chunked chunks"] >= 3
    assert snapshots["chunked"].equals(snapshots["whole"]) and snapshots["whole"].num_rows == 497
    assert 777_777 not in snapshots["whole"].column("user_id").to_pylist()
    assert not list(
        (tmp_path / "chunked" / "lake" / "validation" / f"ds={DS}").glob("key-chunks-*")
    )  # spill removed


def test_corrupt_parquet_is_named(data, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    part = next((copy / "users").glob("*.parquet"))
    part.write_bytes(part.read_bytes()[: len(part.read_bytes()) // 2])
    code, record = run(copy, tmp_path / "work")
    assert code == EXIT_USER_ERROR
    assert "CorruptInputError: input table 'users'" in record["error"]


def test_a_read_error_of_the_file_system_is_a_passing_fault(data, tmp_path, monkeypatch):
    """An I/O error while reading (a network file system hiccup; a root test cannot provoke one, so
    the dataset reader raises it here) is retried, not called bad data."""
    import errno

    import recsys_core.io.inputs as inputs

    def failing_read(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(inputs.pads, "dataset", failing_read)
    code, record = run(data, tmp_path / "work")
    assert code == EXIT_TRANSIENT
    assert (
        "TransientError: input table 'users'" in record["error"] and "read error" in record["error"]
    )


def test_partitioned_inputs_read_the_partition_of_ds(data, tmp_path):
    copy = tmp_path / "data"
    for table in ("users", "items", "interactions"):
        shutil.copytree(data / table, copy / table / f"ds={DS}")
    code, record = run(copy, tmp_path / "work")
    assert code == 0 and record["rows_out"]["interactions"] == 500
    code, record = run(
        copy, tmp_path / "work", "--set", "validation.input_wait_seconds=0", ds="2026-02-01"
    )
    # not arrived yet is a passing fault: the task retries later, it is not bad data
    assert code == EXIT_TRANSIENT
    assert "TransientError: input table" in record["error"]
    assert "has no partition ds=2026-02-01" in record["error"]


def test_a_partition_arriving_during_the_wait_is_validated(data, tmp_path):
    """The ds partition of interactions lands two seconds after validate_inputs started waiting."""
    import threading

    late = "2026-02-01"
    copy = tmp_path / "data"
    for table in ("users", "items", "interactions"):
        shutil.copytree(data / table, copy / table / f"ds={DS}")
    for table in ("users", "items"):
        shutil.copytree(data / table, copy / table / f"ds={late}")

    def land():  # whole, as a feed should: written aside, then renamed into place
        shutil.copytree(data / "interactions", tmp_path / "landing")
        (tmp_path / "landing").rename(copy / "interactions" / f"ds={late}")

    arrival = threading.Timer(2.0, land)
    arrival.start()
    try:
        code, record = run(
            copy, tmp_path / "work", "--set", "validation.input_wait_seconds=20", ds=late
        )
    finally:
        arrival.join()
    assert code == 0 and record["rows_out"]["interactions"] == 500


def test_invalid_config_fails_before_reading(data, tmp_path):
    code, record = run(data, tmp_path, "--set", "ranking.top_n=0")
    assert code == EXIT_USER_ERROR and "ranking.top_n: must be positive" in record["error"]


@pytest.mark.parametrize("damage", sorted(DAMAGE_ERRORS))
def test_damaged_interactions_fail_by_name_and_keep_the_published_snapshot(data, tmp_path, damage):
    work = tmp_path / "work"
    assert run(data, work)[0] == 0
    snapshot = work / "lake" / "inputs" / "interactions" / f"ds={DS}"
    before = pq.read_table(snapshot)
    code, record = run(damaged_copy(data, tmp_path, damage), work)
    assert code == EXIT_USER_ERROR and record["status"] == "failed"
    assert DAMAGE_ERRORS[damage] in record["error"], record["error"]
    assert "interactions" in record["error"]
    assert pq.read_table(snapshot).equals(before)  # the last good snapshot of ds stays whole
