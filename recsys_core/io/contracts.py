"""Table contracts and expectation suites read from the versioned files under schemas/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

_ARROW_TYPES = {
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "list<string>": pa.list_(pa.string()),
}


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type of a contract's type name ("int64", "list<string>", ...)."""
    return _ARROW_TYPES[name]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    required: bool
    description: str = ""


@dataclass(frozen=True)
class Contract:
    table: str
    key: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str = ""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def arrow_schema(self, present: list[str] | None = None) -> pa.Schema:
        """The Arrow schema of the table (restricted to `present` columns when given)."""
        return pa.schema(
            [
                pa.field(c.name, _ARROW_TYPES[c.type], nullable=c.nullable)
                for c in self.columns
                if present is None or c.name in present
            ]
        )


@cache
def contract(table: str) -> Contract:
    raw = json.loads((SCHEMAS_DIR / "contracts" / f"{table}.json").read_text())
    cols = tuple(Column(**c) for c in raw["columns"])
    return Contract(raw["table"], tuple(raw["key"]), cols, raw.get("description", ""))


def suite_dict(name: str) -> dict:
    """The raw JSON of an expectation suite (Great Expectations 1.x format) under schemas/expectations."""
    return json.loads((SCHEMAS_DIR / "expectations" / f"{name}.json").read_text())
