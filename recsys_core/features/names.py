"""Feature column names, readable without Spark: which columns of a feature table the towers take."""

from __future__ import annotations

import re


def genre_column(prefix: str, genre: str) -> str:
    """A stable, SQL-safe feature column name for a genre, e.g. ("g_", "Sci-Fi") -> "g_sci_fi"."""
    return prefix + re.sub(r"[^0-9a-z]+", "_", genre.lower()).strip("_")


def feature_columns(columns: list[str], key: str) -> list[str]:
    """The model inputs of a feature table: every column but its key, in stored order."""
    return [c for c in columns if c != key]
