"""One typed configuration for the whole pipeline, loaded from a TOML/JSON file plus overrides."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsys_core.errors import ConfigError

# Where things are when no flag, variable or DAG param says otherwise (the repo checkout itself)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORK_DIR = PROJECT_ROOT / "data"  # the lake, the models and the DuckDB warehouse
DEFAULT_DATA_DIR = PROJECT_ROOT / "data" / "sample"  # the input tables
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "recsys.toml"
DEFAULT_AIRFLOW_HOME = PROJECT_ROOT / ".airflow"

MAX_WAREHOUSE_RETRIES = 10  # waits double: 10 retries already wait 17 minutes in all
MODEL_MODES = ("softmax", "regression", "classification")
SPARK_MEMORY = re.compile(
    r"^[1-9][0-9]*([kmgtp]b?|b)?$", re.IGNORECASE
)  # Spark's sizes: 512m, 4g, 1024
LABELS = ("liked", "interacted")
# model.validation_share must stay below this: at half or more the towers would be checked on as
# many rows as they train on (the share only reports a validation loss, it does not tune anything)
MAX_VALIDATION_SHARE = 0.5


def _require_positive(section: str, cfg: Any, *keys: str) -> None:
    for key in keys:
        value = getattr(cfg, key)
        if value <= 0:
            raise ConfigError(f"config {section}.{key}: must be positive, got {value}")


@dataclass(frozen=True)
class ModelConfig:
    """The two towers and how they are trained (SEED.md "Neural network architecture")."""

    # "softmax" (the default): the retrieval objective of two-tower models. Each positive (label below)
    # is a target to pick out of the batch's other targets plus `sampled_negatives` uniform items:
    # softmax over v_u . v_m / T with a learned temperature T and the logQ correction for how often
    # each item is sampled. The towers also read learned id embeddings (dropped to zero for a share
    # `id_dropout` of rows in training, and for every id unseen in training) and the user's
    # `history_length` most recent items, pooled with a recency weight halving every
    # `history_half_life` items (docs/model.md).
    # "regression": MSE on the rating scaled to [-1, 1]; "classification": sigmoid of v_u . v_m and
    # binary cross-entropy on the label (SEED.md "Model function"), with `negatives` sampled items
    mode: str = "softmax"
    like_threshold: float = 4.0  # label "liked": 4 stars and up (of 5)
    # the positives: "liked" (rating >= like_threshold) or "interacted" (implicit: any interaction)
    label: str = "liked"
    negatives: int = 4  # classification: sampled non-interacted items per interaction, labelled 0
    user_layers: tuple[int, ...] = (256, 128, 32)  # the last width is the embedding size
    item_layers: tuple[int, ...] = (256, 128, 32)
    l2: float = 1e-6
    learning_rate: float = 1e-3  # Keras Adam's default
    epochs: int = 3
    batch_size: int = 256
    validation_share: float = 0.1  # training rows held out to report a validation loss
    seed: int = 42  # any fixed value: the same inputs train the same towers
    history_length: int = 50  # softmax: the most recent items the user tower reads
    history_half_life: float = 10.0  # softmax: items back at which an item's weight has halved
    id_dropout: float = 0.5  # softmax: share of training rows whose id embedding is zeroed
    sampled_negatives: int = 512  # softmax: uniform items added to each batch's in-batch negatives
    initial_temperature: float = 0.1  # softmax: T at the start (learned from there)
    # softmax: the weight of the logQ correction. 1 is the unbiased sampled softmax; above 1 the
    # towers learn to favour often-liked items more than the plain softmax does (docs/model.md)
    logq_weight: float = 1.0
    # softmax: keep the exponential moving average of the weights over the steps, with this momentum
    # (about the last 1 / (1 - momentum) steps); 0 keeps the last step's weights
    weight_averaging: float = 0.99
    # softmax: before training, search a few settings on a validation split of the training
    # interactions and train with the winner (recsys_core/model/tuning.py); recorded with the model
    tune: bool = False
    # softmax: trainings per trial of that search (seeds model.seed, model.seed + 1, ...); one
    # training's NDCG@10 moves by a few percent with the seed alone, the mean of two moves less
    tune_seeds: int = 2
    # softmax: nightly training starts from the blessed model's weights and trains on the interactions
    # newer than its training data plus a seeded `replay_share` of the older ones; a full retrain runs
    # when the last one is `full_retrain_days` or more days before ds (0: every night), when there is
    # no blessed model, and when the features or the model's settings changed (model/warm_start.py)
    full_retrain_days: int = 7
    replay_share: float = 0.1
    warm_epochs: int = 1  # passes of a warm start over its new and replayed interactions

    def __post_init__(self) -> None:
        for name in ("user_layers", "item_layers"):
            layers = getattr(self, name)
            if not layers or any(u <= 0 for u in layers):
                raise ConfigError(
                    f"config model.{name}: needs at least one positive width, got {layers}"
                )
        if self.mode not in MODEL_MODES:
            raise ConfigError(f"config model.mode: must be one of {MODEL_MODES}, got {self.mode!r}")
        if self.label not in LABELS:
            raise ConfigError(f"config model.label: must be one of {LABELS}, got {self.label!r}")
        if self.negatives < 0 or self.sampled_negatives < 0:
            raise ConfigError(
                "config model.negatives and model.sampled_negatives: must be >= 0, got "
                f"{self.negatives} and {self.sampled_negatives}"
            )
        _require_positive(
            "model",
            self,
            "epochs",
            "batch_size",
            "history_length",
            "history_half_life",
            "initial_temperature",
            "tune_seeds",
            "warm_epochs",
        )
        for key in ("id_dropout", "weight_averaging"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(
                    f"config model.{key}: must be in [0, 1), got {getattr(self, key)}"
                )
        if self.full_retrain_days < 0 or not 0 < self.replay_share <= 1:
            raise ConfigError(
                "config model: full_retrain_days must be >= 0 and replay_share in (0, 1], got "
                f"{self.full_retrain_days} and {self.replay_share}"
            )
        if self.logq_weight < 0:
            raise ConfigError(f"config model.logq_weight: must be >= 0, got {self.logq_weight}")
        if self.learning_rate <= 0 or self.l2 < 0:
            raise ConfigError(f"config model: learning_rate must be > 0 and l2 >= 0, got {self}")
        if not 0 <= self.validation_share < MAX_VALIDATION_SHARE:
            raise ConfigError(
                f"config model.validation_share: must be in [0, {MAX_VALIDATION_SHARE}), "
                f"got {self.validation_share}"
            )

    def require_matching_towers(self) -> None:
        """The towers must end in the same size. Checked by Config, not on construction: a ModelConfig
        built by hand may differ, and build_model refuses it with its own message (its test builds one)."""
        if self.user_layers[-1] != self.item_layers[-1]:
            raise ConfigError(
                "config model: the user and item towers must output vectors of the same size "
                f"(user_layers ends in {self.user_layers[-1]}, item_layers ends in {self.item_layers[-1]}); "
                "the dot product v_u . v_m needs equal sizes"
            )


@dataclass(frozen=True)
class RetrievalConfig:
    """Candidate sources of SEED.md "Retrieval"; every size is configurable."""

    # sizes from the tradeoff curve of `recsys evaluate --holdout validation` on ml-latest-small (README)
    recent_items: int = 10
    similar_per_item: int = 20
    top_genres: int = 3
    items_per_genre: int = 30
    country_items: int = 50
    # the user's best items, by the towers, among the items nobody has interacted with yet (reason
    # "new", chosen at ranking: recsys_core/candidates/ranking.py); 0 switches the source off
    new_items: int = 10

    def require_every_source(self) -> None:
        """Every size positive. Checked by Config, not on construction: built by hand, a size of 0
        switches its source off (retrieval's tests try each source alone that way)."""
        _require_positive(
            "retrieval",
            self,
            "recent_items",
            "similar_per_item",
            "top_genres",
            "items_per_genre",
            "country_items",
        )
        if self.new_items < 0:
            raise ConfigError(f"config retrieval.new_items: must be >= 0, got {self.new_items}")


@dataclass(frozen=True)
class ValidationConfig:
    # interactions naming unknown users or items: up to this share they are dropped and counted,
    # above it the run fails (a broken feed, not a few stragglers)
    max_orphan_share: float = 0.01
    # a table larger than this is validated in chunks of about this many rows, every key's rows in one
    # chunk (recsys_core/io/key_chunks.py), so validation's peak memory follows the chunk size, not
    # the table's size (the README has the measurements)
    chunk_rows: int = 5_000_000
    # inputs partitioned by ds: how long validate_inputs waits for the partition of its ds to arrive
    # before it fails as a passing fault (the task then retries with backoff)
    input_wait_seconds: float = 600.0

    def __post_init__(self) -> None:
        _require_positive("validation", self, "chunk_rows")
        if self.input_wait_seconds < 0:
            raise ConfigError(
                f"config validation.input_wait_seconds: must be >= 0, got {self.input_wait_seconds}"
            )
        if not 0 <= self.max_orphan_share < 1:
            raise ConfigError(
                f"config validation.max_orphan_share: must be in [0, 1), got {self.max_orphan_share}"
            )


@dataclass(frozen=True)
class EvaluationConfig:
    """The nightly model gate: a held-out slice and how much worse than the blessed model is tolerated."""

    holdout_user_share: float = (
        0.1  # users whose newest 20% of interactions the towers never train on
    )
    bless_margin: float = (
        0.01  # a new model serves unless its NDCG@10 is below the blessed one's by more
    )
    # when the gate cannot compare (no held-out user has a relevant item, or the blessed model cannot
    # be evaluated), false keeps the blessed model and says so; true blesses the new one unchecked
    bless_unchecked: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.holdout_user_share < 1 or self.bless_margin < 0:
            raise ConfigError(
                "config evaluation: holdout_user_share must be in [0, 1) and bless_margin >= 0, "
                f"got {self.holdout_user_share} and {self.bless_margin}"
            )


@dataclass(frozen=True)
class SimilarityConfig:
    k: int = 20  # nearest items kept per item (>= retrieval.similar_per_item, whose default is 20)

    def __post_init__(self) -> None:
        _require_positive("similarity", self, "k")


@dataclass(frozen=True)
class RankingConfig:
    top_n: int = 20  # recommendations kept per user
    # places of each user's list kept for their best new arrivals (retrieval.new_items), when any
    new_slots: int = 1

    def __post_init__(self) -> None:
        _require_positive("ranking", self, "top_n")
        if not 0 <= self.new_slots <= self.top_n:
            raise ConfigError(
                f"config ranking.new_slots: must be in [0, top_n={self.top_n}], got {self.new_slots}"
            )


@dataclass(frozen=True)
class SparkConfig:
    # the master of jobs started by hand (`python -m jobs.<step>`, `recsys evaluate`) and the default
    # spark_default connection of `recsys run`; the DAG's Spark tasks take theirs from spark_default
    master: str = "local[*]"
    driver_memory: str = (
        "4g"  # a starting value, not measured (the benches pass their own --driver-memory)
    )
    # Spark's own default, 200, makes tiny tasks for the sample data on a few local cores; raise it on a cluster
    shuffle_partitions: int = 8
    # executors on a cluster; empty or 0 leaves the choice to Spark (and changes nothing under local[*])
    executor_memory: str = ""
    executor_cores: int = 0
    total_executor_cores: int = 0

    def __post_init__(self) -> None:
        _require_positive("spark", self, "shuffle_partitions")
        memory = {"spark.driver_memory": self.driver_memory}
        if self.executor_memory:  # empty: not set
            memory["spark.executor_memory"] = self.executor_memory
        for where, value in memory.items():
            if not SPARK_MEMORY.match(value):
                raise ConfigError(
                    f"config {where}: expected a size such as 512m or 4g, got {value!r}"
                )
        for where, cores in (
            ("spark.executor_cores", self.executor_cores),
            ("spark.total_executor_cores", self.total_executor_cores),
        ):
            if cores < 0:
                raise ConfigError(f"config {where}: must be >= 0 (0: not set), got {cores}")


@dataclass(frozen=True)
class WarehouseConfig:
    # duckdb:///path/file.duckdb or postgresql://user@host:port/db; empty: <work>/warehouse.duckdb
    # (not checked here: the warehouse checks the URL when it opens it, recsys_core/publish/warehouse.py)
    url: str = ""
    # attempts after the first when a publish hits a passing fault of the database (connection
    # refused or lost), waiting 1, 2, 4, ... seconds between them; then the task fails and retries
    retries: int = 5

    def __post_init__(self) -> None:
        if not 0 <= self.retries <= MAX_WAREHOUSE_RETRIES:
            raise ConfigError(
                f"config warehouse.retries: must be in [0, {MAX_WAREHOUSE_RETRIES}], got {self.retries}"
            )


@dataclass(frozen=True)
class RetentionConfig:
    """What the nightly's cleanup task keeps, counted back from the run's ds (recsys_core/io/retention.py);
    0 keeps everything of its kind."""

    lake_days: int = 14  # lake partitions (snapshots, features, embeddings, candidates, Data Docs)
    models_kept: int = 5  # model folders besides the blessed one and those kept nights ranked with
    reports_days: int = 90  # HTML run reports
    warehouse_days: int = 0  # ds partitions of recommendations, item_neighbors and items

    def __post_init__(self) -> None:
        for key in ("lake_days", "models_kept", "reports_days", "warehouse_days"):
            if getattr(self, key) < 0:
                raise ConfigError(f"config retention.{key}: must be >= 0, got {getattr(self, key)}")


@dataclass(frozen=True)
class Config:
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    similarity: SimilarityConfig = field(default_factory=SimilarityConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    spark: SparkConfig = field(default_factory=SparkConfig)
    warehouse: WarehouseConfig = field(default_factory=WarehouseConfig)

    def __post_init__(self) -> None:
        """Each section checked itself when built; here: what the pipeline needs beyond that, and what
        spans sections."""
        self.model.require_matching_towers()
        self.retrieval.require_every_source()
        if self.retrieval.similar_per_item > self.similarity.k:
            raise ConfigError(
                f"config retrieval.similar_per_item ({self.retrieval.similar_per_item}) exceeds "
                f"similarity.k ({self.similarity.k}): the neighbor table keeps only k items per item"
            )

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
    if isinstance(expected, bool):
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"  # a DAG param's True/False as text
        if not isinstance(value, bool):
            raise ConfigError(f"config {where}: expected true or false, got {value!r}")
        return value
    if isinstance(value, bool):
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


def from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    """Build a validated Config from nested sections; unknown sections or keys are errors."""
    sections = {f.name: f for f in dataclasses.fields(Config)}
    built: dict[str, Any] = {}
    for section, values in raw.items():
        if section not in sections:
            raise ConfigError(
                f"{source}: unknown config section [{section}] (known: {sorted(sections)})"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table of keys")
        factory = sections[section].default_factory
        if factory is dataclasses.MISSING:  # every Config field defaults to a fresh section
            raise TypeError(f"Config.{section} has no default_factory")
        cls: Callable[..., Any] = factory  # the section's dataclass
        defaults = cls()
        known = {f.name for f in dataclasses.fields(defaults)}
        kwargs = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{source}: unknown key {section}.{key} (known: {sorted(known)})")
            kwargs[key] = _coerce(section, key, value, getattr(defaults, key))
        built[section] = cls(**kwargs)
    return Config(**built)


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


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
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
