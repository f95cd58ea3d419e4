"""Model references: versions are deterministic, the run's candidate and serving model are recorded per
ds, and the blessed pointer is replaced whole."""

import numpy as np
import pytest

from recsys_core.config import Config, ModelConfig
from recsys_core.errors import RecsysError
from recsys_core.io.lake import Lake
from recsys_core.model import registry

DS = "2026-01-31"


def test_a_version_depends_on_ds_config_and_data_and_nothing_else(tmp_path):
    data = tmp_path / "examples.bin"
    data.write_bytes(b"abc")
    x = np.arange(6.0).reshape(2, 3)
    version = registry.model_version(DS, Config(), x, files=(data,))
    assert version == registry.model_version(DS, Config(), x.copy(), files=(data,))
    assert version.startswith("m20260131-") and len(version) == len("m20260131-") + 10
    others = {
        registry.model_version("2026-02-01", Config(), x, files=(data,)),
        registry.model_version(DS, Config(model=ModelConfig(epochs=4)), x, files=(data,)),
        registry.model_version(DS, Config(), x + 1, files=(data,)),
    }
    data.write_bytes(b"abd")
    others.add(registry.model_version(DS, Config(), x, files=(data,)))
    assert version not in others and len(others) == 4


def test_the_candidate_and_the_serving_model_are_recorded_per_ds(tmp_path):
    lake = Lake(tmp_path)
    registry.write_candidate(lake, DS, "m1", tmp_path / "models" / "m1")
    registry.write_serving(lake, DS, {"version": "m0", "path": "/models/m0"})
    assert registry.read_candidate(lake, DS) == {
        "version": "m1",
        "path": str(tmp_path / "models" / "m1"),
    }
    assert registry.read_serving(lake, DS) == {"version": "m0", "path": "/models/m0"}


def test_the_blessed_pointer_round_trips_and_a_broken_one_is_named(tmp_path):
    assert registry.read_blessed(tmp_path) is None
    registry.write_blessed(tmp_path, {"version": "m1", "ds": DS})
    assert registry.read_blessed(tmp_path) == {"version": "m1", "ds": DS}
    assert [p.name for p in tmp_path.iterdir()] == ["blessed.json"]  # no temporary file left
    (tmp_path / "blessed.json").write_text("{not json")
    with pytest.raises(RecsysError, match="blessed-model registry .* is not valid JSON"):
        registry.read_blessed(tmp_path)


def test_blessing_is_a_compare_and_swap_that_never_moves_to_an_older_ds(tmp_path):
    first = {"version": "m1", "ds": "2026-01-31", "path": "/m1"}
    assert registry.bless_model(tmp_path, first, None) == (True, "")
    # a backfill of an earlier date trained m0: it never replaces the model of a later ds
    ok, why = registry.bless_model(tmp_path, {"version": "m0", "ds": "2026-01-20"}, "m1")
    assert not ok and "later ds 2026-01-31" in why
    # a gate that compared against m0 while m1 was blessed meanwhile: refused, named
    ok, why = registry.bless_model(tmp_path, {"version": "m2", "ds": "2026-02-01"}, "m0")
    assert not ok and "changed during the gate (to m1, compared against m0)" in why
    assert registry.read_blessed(tmp_path)["version"] == "m1"
    assert registry.bless_model(tmp_path, {"version": "m2", "ds": "2026-02-01"}, "m1")[0]
    assert registry.read_blessed(tmp_path)["version"] == "m2"


BLESS_IN_PROCESS = """
import sys
from recsys_core.model import registry
ok, _ = registry.bless_model(sys.argv[1], {"version": sys.argv[2], "ds": "2026-02-01"}, "m1")
print(int(ok))
"""


def test_two_gates_blessing_at_once_one_wins_and_the_other_is_told(tmp_path):
    """Both compared against m1 and start together; under the registry's lock only one swaps."""
    import subprocess
    import sys

    registry.write_blessed(tmp_path, {"version": "m1", "ds": "2026-01-31"})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BLESS_IN_PROCESS, str(tmp_path), v],
            stdout=subprocess.PIPE,
            text=True,
        )
        for v in ("m2a", "m2b")
    ]
    won = [int(p.communicate(timeout=120)[0]) for p in procs]
    assert sorted(won) == [0, 1]
    assert registry.read_blessed(tmp_path)["version"] == ("m2a", "m2b")[won.index(1)]
