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
