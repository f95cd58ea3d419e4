"""Tests of recsys_core.datasets.movielens on tiny hand-written fixtures of each release, and on ml-latest-small."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recsys_core.columns import INPUT_TABLES, INTERACTIONS, ITEMS, USERS
from recsys_core.datasets.movielens import MovieLensFormatError, ingest_movielens
from recsys_core.io.contracts import contract
from tests.paths import SHARED_DATA

SHARED_ML_LATEST_SMALL = SHARED_DATA / "ml-latest-small"

LATEST_SMALL = {
    "ratings.csv": "userId,movieId,rating,timestamp\n"
    "1,1,4.0,964982703\n"
    "1,2,3.5,964981247\n"
    "2,1,0.5,964982224\n"
    "3,99,5.0,964983000\n",  # item 99 is not in movies.csv
    "movies.csv": "movieId,title,genres\n"
    "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
    '2,"American President, The (1995) ",Comedy|Drama|Romance\n'
    "3,Babylon 5,(no genres listed)\n",
}


def _flags(*genres: str) -> str:
    order = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
             "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
             "Romance", "Sci-Fi", "Thriller", "War", "Western"]  # fmt: skip
    return "|".join("1" if g in genres else "0" for g in order)


CHILDRENS = "Children's"

ML_100K = {
    "u.data": "1\t1\t5\t874965758\n"
    "1\t2\t3\t876893171\n"
    "2\t1\t4\t878542960\n"
    "4\t2\t2\t886397596\n"  # user 4 is not in u.user
    "3\t7\t1\t884182806\n",  # item 7 is not in u.item
    "u.item": f"1|Toy Story (1995)|01-Jan-1995||http://imdb/1|{_flags('Animation', CHILDRENS, 'Comedy')}\n"
    f"2|Café (1999)|12-Mar-1998||http://imdb/2|{_flags('Drama')}\n"
    f"3|unknown||||{_flags('unknown')}\n"
    f"4|Old Film (1950)|||http://imdb/4|{_flags('Western')}\n",
    "u.user": "1|24|M|technician|02139\n2|53|F|other|T8H1N\n3|23|M|writer|\n5|33|F|other|abc12\n",
}

ML_1M = {
    "ratings.dat": "1::1::5::978300760\n"
    "1::2::3::978302109\n"
    "2::2::4::978301968\n"
    "7::1::3::978300000\n"  # user 7 is not in users.dat
    "2::9::4::978301000\n",  # item 9 is not in movies.dat
    "movies.dat": "1::Toy Story (1995)::Animation|Children's|Comedy\n"
    "2::Café (1999)::Drama\n"
    "3::Star Trek: The Motion Picture (1979)::Action|Adventure|Sci-Fi\n",
    "users.dat": "1::F::1::10::48067\n"
    "2::M::56::16::70072\n"
    "3::M::25::15::55117-1234\n"
    "4::F::45::7::V5A2B1\n",
}


def _write_folder(folder: Path, files: dict[str, str], encoding: str) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_bytes(text.encode(encoding))
    return folder


def _write_zip(path: Path, files: dict[str, str], encoding: str, top: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        if top:
            zf.writestr(f"{top}/", "")
        for name, text in files.items():
            zf.writestr(f"{top}/{name}" if top else name, text.encode(encoding))
    return path


def _read(out: Path, table: str) -> list[dict]:
    data = pq.read_table(out / table)
    expected = contract(table).arrow_schema()
    assert [(f.name, f.type) for f in data.schema] == [(f.name, f.type) for f in expected]
    return data.to_pylist()


def _by_id(rows: list[dict], key: str) -> dict:
    return {r[key]: r for r in rows}


@pytest.mark.parametrize("delivery", ["folder", "nested folder", "zip", "flat zip"])
def test_latest_small(tmp_path, delivery, caplog):
    if delivery == "folder":
        src = _write_folder(tmp_path / "ml-latest-small", LATEST_SMALL, "utf-8")
    elif delivery == "nested folder":
        src = _write_folder(tmp_path / "dl" / "ml-latest-small", LATEST_SMALL, "utf-8").parent
    elif delivery == "zip":
        src = _write_zip(tmp_path / "ml.zip", LATEST_SMALL, "utf-8", top="ml-latest-small")
    else:
        src = _write_zip(tmp_path / "ml.zip", LATEST_SMALL, "utf-8")
    out = tmp_path / "out"

    with caplog.at_level(logging.WARNING, logger="recsys_core.datasets.movielens"):
        counts = ingest_movielens(src, out)

    assert counts == {USERS: 3, ITEMS: 3, INTERACTIONS: 3}
    assert "1 item(s)" in caplog.text and "[99]" in caplog.text
    users = _read(out, USERS)
    assert users == [
        {"user_id": u, "country": "unknown", "age": None, "gender": None} for u in (1, 2, 3)
    ]
    items = _by_id(_read(out, ITEMS), "item_id")
    assert items[1] == {
        "item_id": 1,
        "title": "Toy Story",
        "year": 1995,
        "genres": ["Adventure", "Animation", "Children", "Comedy", "Fantasy"],
    }
    assert (items[2]["title"], items[2]["year"]) == ("American President, The", 1995)
    assert items[3] == {"item_id": 3, "title": "Babylon 5", "year": None, "genres": []}
    ratings = _read(out, INTERACTIONS)
    assert [(r["user_id"], r["item_id"], r["rating"], r["timestamp"]) for r in ratings] == [
        (1, 1, 4.0, 964982703),
        (1, 2, 3.5, 964981247),
        (2, 1, 0.5, 964982224),
    ]


def test_100k_zip(tmp_path):
    src = _write_zip(tmp_path / "ml-100k.zip", ML_100K, "latin-1", top="ml-100k")
    out = tmp_path / "out"

    assert ingest_movielens(src, out) == {USERS: 5, ITEMS: 4, INTERACTIONS: 4}

    users = _by_id(_read(out, USERS), "user_id")
    assert users[1] == {"user_id": 1, "country": "US-0", "age": 24, "gender": "M"}
    assert users[2] == {"user_id": 2, "country": "CA", "age": 53, "gender": "F"}
    assert users[3]["country"] == "unknown"  # empty zip
    assert users[5]["country"] == "unknown"  # garbage zip
    assert users[4] == {"user_id": 4, "country": "unknown", "age": None, "gender": None}
    items = _by_id(_read(out, ITEMS), "item_id")
    assert items[1] == {
        "item_id": 1,
        "title": "Toy Story",
        "year": 1995,
        "genres": ["Animation", "Children", "Comedy"],
    }
    # the year comes from the release date when there is one, else from the title
    assert items[2] == {"item_id": 2, "title": "Café", "year": 1998, "genres": ["Drama"]}
    assert items[3] == {"item_id": 3, "title": "unknown", "year": None, "genres": []}
    assert items[4] == {"item_id": 4, "title": "Old Film", "year": 1950, "genres": ["Western"]}
    ratings = _read(out, INTERACTIONS)
    assert sorted((r["user_id"], r["item_id"], r["rating"]) for r in ratings) == [
        (1, 1, 5.0),
        (1, 2, 3.0),
        (2, 1, 4.0),
        (4, 2, 2.0),
    ]


def test_1m_folder(tmp_path):
    src = _write_folder(tmp_path / "ml-1m", ML_1M, "latin-1")
    out = tmp_path / "out"

    assert ingest_movielens(src, out) == {USERS: 5, ITEMS: 3, INTERACTIONS: 4}

    users = _by_id(_read(out, USERS), "user_id")
    assert users[1] == {"user_id": 1, "country": "US-4", "age": 1, "gender": "F"}
    assert users[2] == {"user_id": 2, "country": "US-7", "age": 56, "gender": "M"}
    assert (users[3]["country"], users[3]["age"]) == ("US-5", 25)
    assert (users[4]["country"], users[4]["age"]) == ("CA", 45)
    assert users[7] == {"user_id": 7, "country": "unknown", "age": None, "gender": None}
    items = _by_id(_read(out, ITEMS), "item_id")
    assert items[1]["genres"] == ["Animation", "Children", "Comedy"]
    assert items[2] == {"item_id": 2, "title": "Café", "year": 1999, "genres": ["Drama"]}
    assert (items[3]["title"], items[3]["year"]) == ("Star Trek: The Motion Picture", 1979)
    ratings = _read(out, INTERACTIONS)
    assert sorted((r["user_id"], r["item_id"], r["rating"], r["timestamp"]) for r in ratings) == [
        (1, 1, 5.0, 978300760),
        (1, 2, 3.0, 978302109),
        (2, 2, 4.0, 978301968),
        (7, 1, 3.0, 978300000),
    ]


def test_unknown_layout(tmp_path):
    src = _write_folder(tmp_path / "not-movielens", {"ratings.csv": "a,b\n1,2\n"}, "utf-8")
    with pytest.raises(MovieLensFormatError) as err:
        ingest_movielens(src, tmp_path / "out")
    assert str(src) in str(err.value)
    assert "movies.csv" in str(err.value) and "u.data" in str(err.value)
    assert "users.dat" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_missing_source(tmp_path):
    with pytest.raises(MovieLensFormatError, match="not a folder or a .zip"):
        ingest_movielens(tmp_path / "nowhere", tmp_path / "out")


def test_malformed_file(tmp_path):
    files = {**ML_1M, "ratings.dat": "1::one::5::978300760\n"}
    src = _write_folder(tmp_path / "ml-1m", files, "latin-1")
    with pytest.raises(MovieLensFormatError, match="malformed ml-1m"):
        ingest_movielens(src, tmp_path / "out")


def test_shared_ml_latest_small(tmp_path):
    if not (SHARED_ML_LATEST_SMALL / "ratings.csv").exists():
        pytest.skip(f"{SHARED_ML_LATEST_SMALL} not present")
    out = tmp_path / "out"

    counts = ingest_movielens(SHARED_ML_LATEST_SMALL, out)

    assert counts == {USERS: 610, ITEMS: 9742, INTERACTIONS: 100836}
    for table in INPUT_TABLES:
        data = pq.read_table(out / table)
        assert data.num_rows == counts[table]
        assert data.schema.types == contract(table).arrow_schema().types
    ratings = pq.read_table(out / INTERACTIONS, columns=["rating"]).column("rating").to_numpy()
    assert ratings.min() >= 0.5 and ratings.max() <= 5.0
