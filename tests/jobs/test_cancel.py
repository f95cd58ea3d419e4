"""A step stopped by SIGTERM (a task cancelled from the UI) leaves no staging folder, spill file or half
model behind, and records that it was cancelled."""

import json
import os
import signal
import subprocess
import sys
import time

from recsys_core.datasets.generate import generate_dataset
from recsys_core.errors import EXIT_CANCELLED

DS = "2026-01-31"


def leftovers(work) -> list[str]:
    """What a killed step would leave: staging folders, spill folders, temporary files and models."""
    return sorted(
        str(p.relative_to(work))
        for p in work.rglob("*")
        if p.name.startswith((".staging-", ".old-", "key-chunks-", ".m"))
        or (p.name.startswith(".") and p.suffix in (".json", ".tmp"))
    )


def test_sigterm_while_validation_spills_leaves_nothing_half_written(tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    generate_dataset(data, users=10_000, items=1_000, interactions=150_000, seed=3)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.validate_inputs", "--ds", DS, "--data", str(data)]
        + ["--work", str(work), "--set", "validation.chunk_rows=10000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    spill = work / "lake" / "validation" / f"ds={DS}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(spill.glob("key-chunks-*")):
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    assert list(spill.glob("key-chunks-*")), (
        "the step never spilled: nothing to cancel in the middle"
    )
    os.kill(proc.pid, signal.SIGTERM)  # what Airflow sends a task it cancels
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_CANCELLED, out[-3000:]
    assert leftovers(work) == []
    assert not list((work / "lake" / "inputs").glob(f"*/ds={DS}"))  # no snapshot was committed
    record = json.loads(
        (work / "lake" / "_steps" / f"ds={DS}" / "validate_inputs.json").read_text()
    )
    assert record["status"] == "cancelled" and "SIGTERM" in record["error"]


def test_a_model_save_interrupted_leaves_no_temporary_folder(tmp_path):
    """The save writes a temporary folder and renames it; an interruption inside removes it."""
    import numpy as np
    import pytest

    from recsys_core.config import ModelConfig
    from recsys_core.errors import Cancelled
    from recsys_core.model.training import fit_towers

    rng = np.random.default_rng(0)
    cfg = ModelConfig(mode="regression", user_layers=(4,), item_layers=(4,), epochs=1)
    model = fit_towers(
        rng.normal(size=(40, 3)), rng.normal(size=(40, 2)), rng.uniform(1, 5, 40), cfg
    )

    def stopped(*args, **kwargs):
        raise Cancelled()

    model.vocabulary = type("Stopping", (), {"save": stopped})()  # interrupted after the weights
    with pytest.raises(Cancelled):
        model.save(tmp_path / "m1")
    assert list(tmp_path.iterdir()) == []
