"""Named checks of an input table that Great Expectations cannot express on a pandas frame, derived from
the table's contract (schemas/contracts/) so every column gets them, whatever feeds the pipeline.

- values_cast_to_contract_type (every column): each value must cast to the contract's type the way the
  snapshot casts it (inputs.conform, pyarrow's safe cast): no 1.5 in an int64 column, no 1999.5 in an
  int32 year, no "Drama|Comedy" where a list of strings belongs. Without it such a value passes the
  suites and the snapshot crashes with a traceback (exit 1, retried for nothing).
- list_elements_not_null (every list column): ["Drama", None] means nothing; later steps sort and
  group the names and would crash or count a genre called None.
- names_give_distinct_feature_columns (items.genres): every genre becomes per-genre feature columns
  named by features/names.py::genre_column; two names sharing one column, or a name giving no column
  name at all, are rejected (see FeatureNames for why rejecting, not merging).

Each check returns outcomes shaped like merge.outcome() (row-wise: an unexpected_count, so the chunks'
counts add up in merge.py), reported with the suite's own failures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys_core import columns as C
from recsys_core.features.names import genre_column
from recsys_core.io.contracts import Contract, arrow_type

CAST = "values_cast_to_contract_type"
LIST_NULLS = "list_elements_not_null"
FEATURE_NAMES = "names_give_distinct_feature_columns"
SAMPLE = 20  # unexpected values kept, as GX's partial_unexpected_list
LIST_LIKE = (list, tuple, np.ndarray)


def _plain(value):
    """A value as a message shows it: arrays as lists."""
    return value.tolist() if isinstance(value, np.ndarray) else value


def _outcome(rule: str, column: str, kwargs: dict, rows: int, missing: int, bad: list, hint: str):
    present = rows - missing
    return {
        "id": f"{rule}:{column}",
        "type": rule,
        "kwargs": {"column": column, **kwargs},
        "success": not bad,
        "result": {
            "element_count": rows,
            "missing_count": missing,
            "unexpected_count": len(bad),
            "unexpected_percent": 100.0 * len(bad) / present if present else 0.0,
            "partial_unexpected_list": [_plain(v) for v in bad[:SAMPLE]],
        },
        "exception": None,
        "meta": {"hint": hint},
    }


def _casts(value, target: pa.DataType) -> bool:
    try:
        pa.array([value]).cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError, ValueError):
        return False
    return True


def uncastable(series: pd.Series, target: pa.DataType) -> np.ndarray:
    """Mask of the non-null values of series that do not cast to target (pyarrow's safe cast, as
    inputs.conform casts the snapshot). The whole column is cast first; only when that fails are the
    culprits looked for, by numpy for numbers, value by value otherwise."""
    null = series.isna().to_numpy()
    try:
        pa.array(series, from_pandas=True).cast(target, safe=True)
        return np.zeros(len(series), dtype=bool)
    except pa.ArrowNotImplementedError:  # no cast between the types at all: every value fails
        return ~null
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        pass
    if pa.types.is_integer(target) and pd.api.types.is_numeric_dtype(series.dtype):
        info = np.iinfo(target.to_pandas_dtype())
        with np.errstate(invalid="ignore"):
            v = series.to_numpy(dtype=np.float64, na_value=np.nan)
            good = np.isfinite(v) & (v == np.floor(v)) & (v >= info.min) & (v <= info.max)
        return ~null & ~good
    return np.array(
        [
            not n and not _casts(v, target)
            for v, n in zip(series.to_numpy(dtype=object), null, strict=True)
        ],
        dtype=bool,
    )


def cast_outcomes(contract: Contract, df: pd.DataFrame) -> list[dict]:
    """values_cast_to_contract_type for every contract column the frame has (an absent one is
    expect_column_to_exist's to report)."""
    out = []
    for column in contract.columns:
        if column.name not in df:
            continue
        series = df[column.name]
        bad = uncastable(series, arrow_type(column.type))
        out.append(
            _outcome(
                CAST,
                column.name,
                {"type": column.type},
                len(series),
                int(series.isna().sum()),
                series[bad].tolist(),
                f"the snapshot casts {column.name} to {column.type}; these values do not cast "
                "without loss (a fraction in an integer column, a delimited string for a list)",
            )
        )
    return out


def _lists(series: pd.Series) -> tuple[pa.Array, np.ndarray]:
    """(every element of the column's lists, the row of each), null elements kept, values that are no
    list (a delimited string: values_cast_to_contract_type reports them) left out. By Arrow when the
    column converts to a list array, else value by value."""
    try:
        lists = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        lists = None
    if lists is not None and pa.types.is_list(lists.type):
        try:
            values = lists.flatten().cast(pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            values = None
        if values is not None:
            return values, pc.list_parent_indices(lists).to_numpy()
    rows = [(r, e) for r, v in enumerate(series) if isinstance(v, LIST_LIKE) for e in v]
    values = [None if e is None or e != e else str(e) for _, e in rows]
    return pa.array(values, pa.string()), np.array([r for r, _ in rows], dtype=np.int64)


def list_null_outcomes(contract: Contract, df: pd.DataFrame) -> list[dict]:
    """list_elements_not_null for every list column of the contract the frame has."""
    out = []
    for column in contract.columns:
        if column.name not in df or not column.type.startswith("list<"):
            continue
        series = df[column.name]
        values, rows = _lists(series)
        bad_rows = np.unique(rows[values.is_null().to_numpy(zero_copy_only=False)])
        bad = series.iloc[bad_rows].tolist()
        out.append(
            _outcome(
                LIST_NULLS,
                column.name,
                {},
                len(series),
                int(series.isna().sum()),
                bad,
                f"a null inside a {column.name} list names nothing; give an empty list for none",
            )
        )
    return out


def elements(series: pd.Series) -> pd.DataFrame:
    """The elements of a list column, one row each (empty lists give none, null elements stay), as a
    frame with the column's name: what the suite's per_element rules check."""
    values, _ = _lists(series)
    return pd.DataFrame({series.name: pd.Series(values.to_pylist(), dtype=object)})


class FeatureNames:
    """names_give_distinct_feature_columns: the distinct names of a list column (items.genres) over
    every chunk, judged once on the whole table.

    Every genre becomes feature columns named genre_column(prefix, genre) ("Sci-Fi" -> g_sci_fi). Two
    names giving one column ("Sci-Fi" and "Sci Fi", "Drama" and "drama ") are rejected, not merged:
    - the feature columns are what a model is saved with and the gate lines models up by, so each
      must mean one genre every night; a merged column would mean whichever spellings today's
      catalogue happens to hold;
    - the genre name also reaches the published reasons (top_genre:<name>) and retrieval's per-genre
      top lists, which know nothing of the merge: the features would treat two spellings as one genre
      and retrieval as two;
    - two spellings of one genre in one feed are a data-quality fault upstream that its owner should
      fix; the error names both spellings and how many items carry them.
    A name giving an empty column name ("???", "", a name in a script the ASCII-only column names drop)
    is rejected alike: its column would be the bare prefix, shared by every such name."""

    def __init__(self, column: str, name_of: Callable[[str], str], prefix: str):
        self.column, self.name_of, self.prefix = column, name_of, prefix
        self.names: dict[str, set[str]] = {}  # feature column -> the names giving it
        self.rows_of: Counter[str] = (
            Counter()
        )  # feature column -> rows carrying a name that gives it
        self.rows = 0

    def add(self, df: pd.DataFrame) -> None:
        if self.column not in df:
            return
        self.rows += len(df)
        values, rows = _lists(df[self.column])
        if len(values) == 0:
            return
        encoded = values.dictionary_encode()  # each distinct name mapped once
        distinct = encoded.dictionary.to_pylist()
        for name in distinct:
            self.names.setdefault(self.name_of(name), set()).add(name)
        # each feature column once per row: a row with "Sci-Fi" and "Sci Fi" is one row
        features = pa.array([self.name_of(name) for name in distinct], pa.string()).take(
            encoded.indices
        )
        pairs = pa.table({"row": rows, "feature": features}).drop_null()
        counted = pairs.group_by(["row", "feature"]).aggregate([]).column("feature")
        for count in pc.value_counts(counted).to_pylist():
            self.rows_of[count["values"]] += count["counts"]

    def outcome(self) -> dict:
        bad = {
            f: sorted(names)
            for f, names in self.names.items()
            if len(names) > 1 or f == self.prefix
        }
        examples = [f"{names!r} -> {f!r}" for f, names in sorted(bad.items())]
        result = _outcome(
            FEATURE_NAMES,
            self.column,
            {"prefix": self.prefix},
            self.rows,
            0,
            examples,
            "each genre name must give a feature column of its own (features/names.py::genre_column): "
            "spell each genre one way, and give it a letter or digit",
        )
        # the rows carrying a name of a shared (or empty) column: the items to fix
        unexpected = sum(self.rows_of[f] for f in bad)
        result["result"]["unexpected_count"] = unexpected
        result["result"]["unexpected_percent"] = (
            100.0 * unexpected / self.rows if self.rows else 0.0
        )
        return result


def feature_names(table: str) -> FeatureNames | None:
    """The feature-name check of a table whose names become feature columns (items.genres), else None."""
    if table == C.ITEMS:
        return FeatureNames(
            C.GENRES, lambda g: genre_column(C.ITEM_GENRE_PREFIX, g), C.ITEM_GENRE_PREFIX
        )
    return None
