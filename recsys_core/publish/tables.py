"""The warehouse contract: tables, column types per backend, and the comments analysts read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Col:
    name: str
    type: str  # logical: date, bigint, int, double, text, text[], timestamp
    nullable: bool
    comment: str


@dataclass(frozen=True)
class Table:
    name: str
    comment: str
    columns: tuple[Col, ...]
    key: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


DS = Col(
    "ds", "date", False, "logical date of the nightly run that produced the row (partition key)"
)

RECOMMENDATIONS = Table(
    "recommendations",
    "Top-N recommendations per user and ds, ranked by the two-tower model. One complete ds at a time is "
    "replaced atomically; (ds, user_id, rank) is unique.",
    (
        DS,
        Col("user_id", "bigint", False, "user the items are recommended to"),
        Col("rank", "int", False, "1 = best; contiguous 1..n per user"),
        Col(
            "item_id",
            "bigint",
            False,
            "recommended item (never one the user already interacted with)",
        ),
        Col(
            "score",
            "double",
            False,
            "dot product of the L2-normalised user and item embeddings, in [-1, 1]",
        ),
        Col(
            "predicted_rating",
            "double",
            False,
            "regression models: the score mapped back to the rating scale "
            "of the training data; classification models: the model's probability of the label, i.e. that the "
            "user interacts with the item (model.label = interacted) or rates it >= model.like_threshold (liked)",
        ),
        Col(
            "reason",
            "text",
            False,
            "why the item was retrieved: similar_to:<item>, top_genre:<genre>, "
            "top_country:<country>, top_global:all, popular_fill:all; '; '-separated",
        ),
        Col("model_version", "text", False, "model that scored the row; one per ds"),
        Col("run_id", "text", False, "Airflow run that published the row"),
    ),
    ("ds", "user_id", "rank"),
)
ITEM_NEIGHBORS = Table(
    "item_neighbors",
    "For each item and ds, its K nearest items by squared distance between item embeddings.",
    (
        DS,
        Col("item_id", "bigint", False, "item"),
        Col("rank", "int", False, "1 = nearest"),
        Col("neighbor_id", "bigint", False, "a related item (never the item itself)"),
        Col(
            "distance",
            "double",
            False,
            "squared Euclidean distance between the two item embeddings",
        ),
    ),
    ("ds", "item_id", "rank"),
)
ITEMS = Table(
    "items",
    "The item catalogue the ds was computed on (titles for joins).",
    (
        DS,
        Col("item_id", "bigint", False, "item key"),
        Col("title", "text", False, "display title"),
        Col("year", "int", True, "release year, null when unknown"),
        Col("genres", "text[]", False, "genre names"),
    ),
    ("ds", "item_id"),
)
PUBLISH_LOG = Table(
    "publish_log",
    "One row per table and publish: what was made visible, when, and its checksum.",
    (
        DS,
        Col("run_id", "text", False, "Airflow run that published"),
        Col("table_name", "text", False, "published table"),
        Col("rows", "bigint", False, "rows published for ds"),
        Col("checksum", "text", False, "order-insensitive checksum of the published rows"),
        Col("model_version", "text", True, "model that produced the rows"),
        Col("published_at", "timestamp", False, "wall-clock time of the switch (UTC)"),
    ),
    ("ds", "run_id", "table_name"),
)
RUN_REPORT = Table(
    "run_report",
    "One row per step of every nightly run that published: timings, rows, outcome and details.",
    (
        DS,
        Col("run_id", "text", False, "Airflow run"),
        Col("step", "text", False, "task of recsys_nightly"),
        Col("status", "text", False, "success or failed"),
        Col("started_at", "text", True, "start of the step (UTC, ISO 8601)"),
        Col("ended_at", "text", True, "end of the step (UTC, ISO 8601)"),
        Col("seconds", "double", True, "wall-clock seconds"),
        Col("rows_in", "text", True, "rows read per dataset (JSON)"),
        Col("rows_out", "text", True, "rows written per dataset (JSON)"),
        Col(
            "details",
            "text",
            True,
            "anything else the step recorded: model version and metrics, "
            "validation outcome, checksum (JSON)",
        ),
    ),
    ("ds", "run_id", "step"),
)
PUBLISHED = {t.name: t for t in (RECOMMENDATIONS, ITEM_NEIGHBORS, ITEMS)}
LATEST_VIEW = "recommendations_latest"

TYPES = {
    "duckdb": {
        "date": "DATE",
        "bigint": "BIGINT",
        "int": "INTEGER",
        "double": "DOUBLE",
        "text": "VARCHAR",
        "text[]": "VARCHAR[]",
        "timestamp": "TIMESTAMP",
    },
    "postgres": {
        "date": "date",
        "bigint": "bigint",
        "int": "integer",
        "double": "double precision",
        "text": "text",
        "text[]": "text[]",
        "timestamp": "timestamptz",
    },
}


def create_sql(table: Table, dialect: str, name: str | None = None) -> str:
    cols = ", ".join(
        f"{c.name} {TYPES[dialect][c.type]}{'' if c.nullable else ' NOT NULL'}"
        for c in table.columns
    )
    return f"CREATE TABLE IF NOT EXISTS {name or table.name} ({cols})"


def comment_sql(table: Table) -> list[str]:
    def lit(text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    return [f"COMMENT ON TABLE {table.name} IS {lit(table.comment)}"] + [
        f"COMMENT ON COLUMN {table.name}.{c.name} IS {lit(c.comment)}" for c in table.columns
    ]


LATEST_VIEW_SQL = (
    f"CREATE OR REPLACE VIEW {LATEST_VIEW} AS SELECT * FROM recommendations "
    "WHERE ds = (SELECT max(ds) FROM recommendations)"
)
