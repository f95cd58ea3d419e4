"""One typed configuration for the whole pipeline, loaded from a TOML/JSON file plus overrides."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys_core.errors import ConfigError

MODEL_MODES = ("regression", "classification")
SPARK_MEMORY = re.compile(r"^[1-9][0-9]*([kmgtp]b?|b)?$", re.IGNORECASE)  # Spark's sizes: 512m, 4g, 1024
LABELS = ("liked", "interacted")


@dataclass(frozen=True)
class ModelConfig:
    """The two towers and how they are trained (SEED.md "Neural network architecture")."""

    # "regression": MSE on the rating scaled to [-1, 1]; "classification": sigmoid of v_u . v_m and
    # binary cross-entropy on the label rating >= like_threshold (SEED.md "Model function")
    # (the defaults are the best of `recsys evaluate --holdout validation` on ml-latest-small, see README)
    mode: str = "classification"
    like_threshold: float = 4.0
    # classification label: "liked" (rating >= like_threshold) or "interacted" (implicit: any interaction)
    label: str = "interacted"
    negatives: int = 4  # classification: sampled non-interacted items per interaction, labelled 0
    user_layers: tuple[int, ...] = (256, 128, 32)
    item_layers: tuple[int, ...] = (256, 128, 32)
    l2: float = 1e-6
    learning_rate: float = 1e-3
    epochs: int = 3
    batch_size: int = 256
    validation_share: float = 0.1
    seed: int = 42

    @property
    def output_dim(self) -> int:
        return self.user_layers[-1]


@dataclass(frozen=True)
class RetrievalConfig:
    """Candidate sources of SEED.md "Retrieval"; every size is configurable."""

    # sizes from the tradeoff curve of `recsys evaluate --holdout validation` on ml-latest-small (README)
    recent_items: int = 10
    similar_per_item: int = 20
    top_genres: int = 3
    items_per_genre: int = 30
    country_items: int = 50


@dataclass(frozen=True)
class ValidationConfig:
    # interactions naming unknown users or items: up to this share they are dropped and counted,
    # above it the run fails (a broken feed, not a few stragglers)
    max_orphan_share: float = 0.01
    # a table larger than this is validated in chunks of about this many rows, every key's rows in one
    # chunk (recsys_core/key_chunks.py), so validation's memory does not grow with the table
    chunk_rows: int = 5_000_000


@dataclass(frozen=True)
class EvaluationConfig:
    """The nightly model gate: a held-out slice and how much worse than the blessed model is tolerated."""

    holdout_user_share: float = 0.1  # users whose newest 20% of interactions the towers never train on
    bless_margin: float = 0.01  # a new model serves unless its NDCG@10 is below the blessed one's by more


@dataclass(frozen=True)
class SimilarityConfig:
    k: int = 20  # nearest items kept per item (>= retrieval.similar_per_item)


@dataclass(frozen=True)
class RankingConfig:
    top_n: int = 20


@dataclass(frozen=True)
class SparkConfig:
    # the master of jobs started by hand (`python -m jobs.<step>`, `recsys evaluate`) and the default
    # spark_default connection of `recsys run`; the DAG's Spark tasks take theirs from spark_default
    master: str = "local[*]"
    driver_memory: str = "4g"
    shuffle_partitions: int = 8
    # executors on a cluster; empty or 0 leaves the choice to Spark (and changes nothing under local[*])
    executor_memory: str = ""
    executor_cores: int = 0
    total_executor_cores: int = 0


@dataclass(frozen=True)
class WarehouseConfig:
    # duckdb:///path/file.duckdb or postgresql://user@host:port/db; empty: <work>/warehouse.duckdb
    url: str = ""


@dataclass(frozen=True)
class Config:
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    warehouse: WarehouseConfig = field(default_factory=WarehouseConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(section: str, key: str, value: Any, expected: Any) -> Any:
    where = f"{section}.{key}"
    if isinstance(expected, tuple):
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"config {where}: expected a list of integers, got {value!r}")
        return tuple(value)
    if isinstance(expected, bool) or isinstance(value, bool):
        raise ConfigError(f"config {where}: booleans are not accepted here, got {value!r}")
    if isinstance(expected, int):
        if not isinstance(value, int):
            raise ConfigError(f"config {where}: expected an integer, got {value!r}")
        return value
    if isinstance(expected, float):
        if not isinstance(value, (int, float)):
            raise ConfigError(f"config {where}: expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"config {where}: expected a string, got {value!r}")
    return value


def _validate(cfg: Config) -> Config:
    m = cfg.model
    for name in ("user_layers", "item_layers"):
        layers = getattr(m, name)
        if not layers or any(u <= 0 for u in layers):
            raise ConfigError(f"config model.{name}: needs at least one positive width, got {layers}")
    if m.user_layers[-1] != m.item_layers[-1]:
        raise ConfigError(
            "config model: the user and item towers must output vectors of the same size "
            f"(user_layers ends in {m.user_layers[-1]}, item_layers ends in {m.item_layers[-1]}); "
            "the dot product v_u . v_m needs equal sizes"
        )
    if m.mode not in MODEL_MODES:
        raise ConfigError(f"config model.mode: must be one of {MODEL_MODES}, got {m.mode!r}")
    if m.label not in LABELS:
        raise ConfigError(f"config model.label: must be one of {LABELS}, got {m.label!r}")
    if m.negatives < 0:
        raise ConfigError(f"config model.negatives: must be >= 0, got {m.negatives}")
    positive = {
        "model.epochs": m.epochs,
        "model.batch_size": m.batch_size,
        "retrieval.recent_items": cfg.retrieval.recent_items,
        "retrieval.similar_per_item": cfg.retrieval.similar_per_item,
        "retrieval.top_genres": cfg.retrieval.top_genres,
        "retrieval.items_per_genre": cfg.retrieval.items_per_genre,
        "retrieval.country_items": cfg.retrieval.country_items,
        "similarity.k": cfg.similarity.k,
        "ranking.top_n": cfg.ranking.top_n,
        "spark.shuffle_partitions": cfg.spark.shuffle_partitions,
        "validation.chunk_rows": cfg.validation.chunk_rows,
    }
    for where, value in positive.items():
        if value <= 0:
            raise ConfigError(f"config {where}: must be positive, got {value}")
    sp = cfg.spark
    memory = {"spark.driver_memory": sp.driver_memory}
    if sp.executor_memory:  # empty: not set
        memory["spark.executor_memory"] = sp.executor_memory
    for where, value in memory.items():
        if not SPARK_MEMORY.match(value):
            raise ConfigError(f"config {where}: expected a size such as 512m or 4g, got {value!r}")
    for where, value in (("spark.executor_cores", sp.executor_cores),
                         ("spark.total_executor_cores", sp.total_executor_cores)):
        if value < 0:
            raise ConfigError(f"config {where}: must be >= 0 (0: not set), got {value}")
    if m.learning_rate <= 0 or m.l2 < 0:
        raise ConfigError(f"config model: learning_rate must be > 0 and l2 >= 0, got {m}")
    if not 0 <= m.validation_share < 0.5:
        raise ConfigError(f"config model.validation_share: must be in [0, 0.5), got {m.validation_share}")
    if not 0 <= cfg.validation.max_orphan_share < 1:
        raise ConfigError(
            f"config validation.max_orphan_share: must be in [0, 1), got {cfg.validation.max_orphan_share}"
        )
    ev = cfg.evaluation
    if not 0 <= ev.holdout_user_share < 1 or ev.bless_margin < 0:
        raise ConfigError(
            "config evaluation: holdout_user_share must be in [0, 1) and bless_margin >= 0, "
            f"got {ev.holdout_user_share} and {ev.bless_margin}"
        )
    if cfg.retrieval.similar_per_item > cfg.similarity.k:
        raise ConfigError(
            f"config retrieval.similar_per_item ({cfg.retrieval.similar_per_item}) exceeds "
            f"similarity.k ({cfg.similarity.k}): the neighbour table keeps only k items per item"
        )
    return cfg


def from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    """Build a validated Config from nested sections; unknown sections or keys are errors."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    built: dict[str, Any] = {}
    for section, values in raw.items():
        if section not in sections:
            raise ConfigError(f"{source}: unknown config section [{section}] (known: {sorted(sections)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table of keys")
        cls = sections[section].default_factory  # type: ignore[misc]
        defaults = cls()
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown key {section}.{key} (known: {sorted(known)})")
            kwargs[key] = _coerce(section, key, value, getattr(defaults, key))
        built[section] = cls(**kwargs)
    return _validate(Config(**built))


def parse_override(text: str) -> tuple[str, str, Any]:
    """Parse "section.key=value" where value is TOML (numbers, lists, quoted or bare strings)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    dotted, value_text = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {value_text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = value_text.strip()  # a bare string such as local[*]
    return section, key, value


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load the config file (TOML or JSON; none means defaults) and apply "section.key=value" overrides."""
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            raw = json.loads(p.read_text()) if p.suffix == ".json" else tomllib.loads(p.read_text())
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{p}: not valid {p.suffix.lstrip('.') or 'TOML'}: {exc}") from exc
    for text in overrides:
        section, key, value = parse_override(text)
        raw.setdefault(section, {})[key] = value
    return from_dict(raw, source)
