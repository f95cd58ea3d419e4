"""Ingest a MovieLens release (ml-latest-small, ml-100k or ml-1m; folder or .zip) into the three input tables."""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from recsys_core.columns import (
    AGE,
    COUNTRY,
    GENDER,
    GENRES,
    INTERACTIONS,
    ITEM_ID,
    ITEMS,
    RATING,
    TIMESTAMP,
    TITLE,
    UNKNOWN_COUNTRY,
    USER_ID,
    USERS,
    YEAR,
)
from recsys_core.errors import RecsysError
from recsys_core.io.contracts import contract
from recsys_core.io.inputs import write_input

log = logging.getLogger(__name__)

LAYOUTS = {
    "ml-latest-small": ("ratings.csv", "movies.csv"),
    "ml-100k": ("u.data", "u.item", "u.user"),
    "ml-1m": ("ratings.dat", "movies.dat", "users.dat"),
}
GENRES_100K = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
# older releases spell it "Children's"; ml-latest-small (the reference) says "Children"
_GENRE_NAMES = {"Children's": "Children"}
_NO_GENRES = {"", "(no genres listed)", "unknown"}
_TITLE_YEAR = r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)$"
_US_ZIP = re.compile(r"[0-9]{5}")
_CA_POSTAL = re.compile(r"[A-Z][0-9][A-Z]")
_RATINGS_DTYPES = {USER_ID: "int64", ITEM_ID: "int64", RATING: "float32", TIMESTAMP: "int64"}
_LOGGED_IDS = 20  # unknown item ids named in the warning: enough to spot a pattern, not a flood

Reader = Callable[[str], bytes]


class MovieLensFormatError(RecsysError):
    """The source is not a MovieLens release this loader knows, or one of its files is malformed."""


def ingest_movielens(
    src: str | Path, out: str | Path, report: Callable[[str], None] | None = None
) -> dict[str, int]:
    """Write out/users, out/items and out/interactions from a MovieLens release; return their row
    counts. `report` hears where it is (the release read, each table written) as it goes."""
    say = report or (lambda text: None)
    src = Path(src)
    release, read = _open_release(src)
    say(f"reading {src.name} ({release})")
    try:
        users, items, ratings = _PARSERS[release](read)
    except (ValueError, KeyError) as e:
        raise MovieLensFormatError(f"{src}: malformed {release} file: {e}") from e

    users = _add_missing_users(users, ratings[USER_ID], src)
    known = ratings[ITEM_ID].isin(items[ITEM_ID])
    if not known.all():
        unknown = np.unique(ratings.loc[~known, ITEM_ID])
        log.warning(
            "%s: dropped %d rating(s) of %d item(s) missing from the movies file: %s",
            src, int((~known).sum()), len(unknown), unknown[:_LOGGED_IDS].tolist(),
        )  # fmt: skip
        ratings = ratings[known]

    tables = {USERS: users, ITEMS: items, INTERACTIONS: ratings}
    for table, frame in tables.items():
        schema = contract(table).arrow_schema()
        write_input(out, table, pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
        say(f"{table}: {len(frame):,} rows written")
    return {table: len(frame) for table, frame in tables.items()}


def _open_release(src: Path) -> tuple[str, Reader]:
    """The release found at the top of `src` or in one of its top folders, and a reader of its files."""
    paths, read_path = _listing(src)
    names_by_folder: dict[str, set[str]] = {}
    for path in paths:
        folder, _, name = path.rpartition("/")
        if "/" not in folder:
            names_by_folder.setdefault(folder, set()).add(name)
    found = [
        (folder, release)
        for folder, names in sorted(names_by_folder.items())
        for release, files in LAYOUTS.items()
        if set(files) <= names
    ]
    if len(found) != 1 and not (found and found[0][0] == ""):
        expected = "; ".join(f"{r}: {', '.join(files)}" for r, files in LAYOUTS.items())
        what = f"several releases in {[f for f, _ in found]}" if found else "no release"
        raise MovieLensFormatError(
            f"{src}: {what} found at its top or in a top folder; expected the files of one of {expected}"
        )
    folder, release = found[0]
    return release, lambda name: read_path(f"{folder}/{name}" if folder else name)


def _listing(src: Path) -> tuple[list[str], Reader]:
    """The relative paths of the files of a folder (two levels deep) or a .zip, and a reader of them."""
    if src.is_dir():
        files = [p for p in [*src.glob("*"), *src.glob("*/*")] if p.is_file()]
        return [p.relative_to(src).as_posix() for p in files], lambda rel: (src / rel).read_bytes()
    if src.is_file() and zipfile.is_zipfile(src):

        def read_member(rel: str) -> bytes:
            with zipfile.ZipFile(src) as zf:
                return zf.read(rel)

        with zipfile.ZipFile(src) as zf:
            return zf.namelist(), read_member
    raise MovieLensFormatError(f"{src}: not a folder or a .zip file")


def _read_dat(data: bytes, sep: str, names: list[str], **kwargs) -> pd.DataFrame:
    """A headerless Latin-1 file of ml-100k / ml-1m."""
    if len(sep) > 1:  # pandas' fast C parser takes one-char separators only
        data, sep = data.replace(sep.encode(), b"\t"), "\t"
    return pd.read_csv(
        io.BytesIO(data), sep=sep, names=names, header=None, encoding="latin-1",
        quoting=csv.QUOTE_NONE, keep_default_na=False, **kwargs,
    )  # fmt: skip


def _items(ids: pd.Series, titles: pd.Series, genres: list[list[str]], years=None) -> pd.DataFrame:
    parts = titles.str.strip().str.extract(_TITLE_YEAR)
    title_years = pd.to_numeric(parts["year"]).astype("Int32")
    return pd.DataFrame(
        {
            ITEM_ID: ids.astype("int64"),
            TITLE: parts["title"].fillna(titles.str.strip()),
            YEAR: title_years if years is None else years.fillna(title_years),
            GENRES: [[_GENRE_NAMES.get(g, g) for g in gs if g not in _NO_GENRES] for gs in genres],
        }
    )


def _users(ids: pd.Series, zips: pd.Series, ages: pd.Series, genders: pd.Series) -> pd.DataFrame:
    genders = genders.str.strip()
    return pd.DataFrame(
        {
            USER_ID: ids.astype("int64"),
            COUNTRY: [_region(z) for z in zips],
            AGE: pd.to_numeric(ages, errors="coerce").astype("Int32"),
            GENDER: genders.where(genders != "", None),
        }
    )


def _region(zip_code: str) -> str:
    """US national zip zone ("US-0".."US-9"), "CA" for a Canadian postal code, else unknown."""
    code = zip_code.strip().upper()
    if _US_ZIP.match(code):
        return f"US-{code[0]}"
    if _CA_POSTAL.match(code):
        return "CA"
    return UNKNOWN_COUNTRY


def _add_missing_users(users: pd.DataFrame | None, rated_by: pd.Series, src: Path) -> pd.DataFrame:
    known = users[USER_ID] if users is not None else []
    missing = np.setdiff1d(rated_by.unique(), known)
    extra = pd.DataFrame(
        {
            USER_ID: missing.astype("int64"),
            COUNTRY: UNKNOWN_COUNTRY,
            AGE: pd.array([pd.NA] * len(missing), dtype="Int32"),
            GENDER: None,
        }
    )
    if users is None:
        return extra
    if len(missing):
        log.warning("%s: added %d user(s) missing from the users file", src, len(missing))
        return pd.concat([users, extra], ignore_index=True)
    return users


def _parse_latest(read: Reader):
    ratings = pd.read_csv(io.BytesIO(read("ratings.csv")), encoding="utf-8")
    ratings = ratings.rename(columns={"userId": USER_ID, "movieId": ITEM_ID})
    ratings = ratings[list(_RATINGS_DTYPES)].astype(_RATINGS_DTYPES)
    movies = pd.read_csv(
        io.BytesIO(read("movies.csv")), encoding="utf-8", dtype=str, keep_default_na=False
    )
    items = _items(movies["movieId"], movies["title"], movies["genres"].str.split("|"))
    return None, items, ratings


def _parse_100k(read: Reader):
    ratings = _read_dat(read("u.data"), "\t", list(_RATINGS_DTYPES), dtype=_RATINGS_DTYPES)
    movie_cols = ["id", "title", "released", "video_released", "imdb_url", *GENRES_100K]
    movies = _read_dat(read("u.item"), "|", movie_cols, dtype=str)
    flags = movies[list(GENRES_100K)].to_numpy() == "1"
    genres = [[g for g, on in zip(GENRES_100K, row, strict=True) if on] for row in flags]
    released = pd.to_numeric(movies["released"].str.extract(r"-(\d{4})$")[0]).astype("Int32")
    items = _items(movies["id"], movies["title"], genres, years=released)
    u = _read_dat(read("u.user"), "|", ["id", "age", "gender", "occupation", "zip"], dtype=str)
    return _users(u["id"], u["zip"], u["age"], u["gender"]), items, ratings


def _parse_1m(read: Reader):
    ratings = _read_dat(read("ratings.dat"), "::", list(_RATINGS_DTYPES), dtype=_RATINGS_DTYPES)
    movies = _read_dat(read("movies.dat"), "::", ["id", "title", "genres"], dtype=str)
    items = _items(movies["id"], movies["title"], movies["genres"].str.split("|"))
    u = _read_dat(read("users.dat"), "::", ["id", "gender", "age", "occupation", "zip"], dtype=str)
    # ml-1m ages are bucket codes (1 = under 18, 18 = 18-24, ..., 56 = 56+): the code stands in for the age
    return _users(u["id"], u["zip"], u["age"], u["gender"]), items, ratings


_PARSERS = {"ml-latest-small": _parse_latest, "ml-100k": _parse_100k, "ml-1m": _parse_1m}
