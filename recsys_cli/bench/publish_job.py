"""`recsys bench publish --job`: the publish step (`python -m jobs.publish`: audit, then the staged load
and switch) on a synthetic night of `users` x 20 recommendations against `users` x 50 interactions,
with its wall seconds and the peak resident memory of its process.

The reference, in the same run: a process that only reads the night's recommendations and interactions
into pandas, the first thing the publish step did before its audit moved into DuckDB. The ratio says
how far the step now stays under what holding its inputs whole would cost."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from recsys_cli.bench.measure import measured
from recsys_core import columns as C
from recsys_core.io import layout as L
from recsys_core.io.lake import Lake

DS = "2026-01-31"
RECS_PER_USER = 20  # ranking.top_n's default
INTERACTIONS_PER_USER = 50  # the scale goal's 50,000,000 interactions for 1,000,000 users
ITEMS_PER_USER = 0.1  # the scale goal's 100,000 items for 1,000,000 users
NEIGHBORS = 20  # similarity.k's default
FILE_USERS = 200_000  # users per Parquet file written, so writing stays in bounded memory too
MIN_HALF_CATALOGUE = INTERACTIONS_PER_USER  # each user's interactions are distinct items


def _write(lake: Lake, dataset: str, parts) -> None:
    folder = lake.partition(dataset, DS)
    folder.mkdir(parents=True, exist_ok=True)
    for n, table in enumerate(parts):
        pq.write_table(table, folder / f"part-{n:05d}.parquet")


def synthetic_night(work: Path, users: int) -> dict:
    """The lake a night leaves before publish: the input snapshots of users, items and interactions, the
    ranked recommendations (20 unseen items per user) and the item neighbours."""
    lake = Lake(work / "lake")
    half = max(int(users * ITEMS_PER_USER) // 2, MIN_HALF_CATALOGUE)
    items = 2 * half
    item_ids = np.arange(items, dtype=np.int64)
    _write(
        lake, L.input_dataset(C.USERS), [pa.table({C.USER_ID: np.arange(users, dtype=np.int64)})]
    )
    _write(
        lake,
        L.input_dataset(C.ITEMS),
        [
            pa.table(
                {
                    C.ITEM_ID: item_ids,
                    C.TITLE: pa.array([f"item {i}" for i in item_ids]),
                    C.YEAR: pa.array(1950 + item_ids % 70, pa.int32()),
                    C.GENRES: pa.array([["Drama", "Comedy"]] * items, pa.list_(pa.string())),
                }
            )
        ],
    )

    def interactions():
        for start in range(0, users, FILE_USERS):
            u = np.arange(start, min(start + FILE_USERS, users), dtype=np.int64)
            user = np.repeat(u, INTERACTIONS_PER_USER)
            j = np.tile(np.arange(INTERACTIONS_PER_USER), len(u))
            yield pa.table(
                {  # items of the catalogue's first half, distinct per user
                    C.USER_ID: user,
                    C.ITEM_ID: (user * 13 + j) % half,
                    C.RATING: np.full(len(user), 4.0),
                    C.TIMESTAMP: np.full(len(user), 1_700_000_000, dtype=np.int64),
                }
            )

    def recommendations():
        for start in range(0, users, FILE_USERS):
            u = np.arange(start, min(start + FILE_USERS, users), dtype=np.int64)
            user = np.repeat(u, RECS_PER_USER)
            rank = np.tile(np.arange(1, RECS_PER_USER + 1, dtype=np.int32), len(u))
            yield pa.table(
                {  # items of the second half: never one the user interacted with
                    C.USER_ID: user,
                    C.RANK: rank,
                    C.ITEM_ID: half + (user * 7 + rank) % half,
                    C.SCORE: 1.0 / rank,
                    C.PREDICTED_RATING: np.full(len(user), 0.5),
                    C.REASON: pa.array(["similar_to:318; top_genre:Drama"] * len(user)),
                    C.MODEL_VERSION: pa.array(["bench"] * len(user)),
                    C.RUN_ID: pa.array(["bench"] * len(user)),
                }
            )

    _write(lake, L.input_dataset(C.INTERACTIONS), interactions())
    _write(lake, L.RECOMMENDATIONS, recommendations())
    rank = np.tile(np.arange(1, NEIGHBORS + 1, dtype=np.int32), items)
    source = np.repeat(item_ids, NEIGHBORS)
    _write(
        lake,
        L.ITEM_NEIGHBORS,
        [
            pa.table(
                {
                    C.ITEM_ID: source,
                    C.RANK: rank,
                    C.NEIGHBOR_ID: (source + rank) % items,
                    C.DISTANCE: rank / 10.0,
                }
            )
        ],
    )
    return {
        "users": users,
        "items": items,
        "interactions": users * INTERACTIONS_PER_USER,
        "recommendations": users * RECS_PER_USER,
    }


def read_whole(work: str) -> None:
    """The reference: the night's recommendations and interactions read into pandas."""
    lake = Lake(Path(work) / "lake")
    recs = lake.read_table(L.RECOMMENDATIONS, DS).to_pandas()
    seen = lake.read_table(L.input_dataset(C.INTERACTIONS), DS, [C.USER_ID, C.ITEM_ID]).to_pandas()
    print(len(recs), len(seen))


def bench_publish_job(users: int, work: Path, url: str) -> dict:
    sizes = synthetic_night(work, users)
    logs = work / "bench-logs"
    logs.mkdir(exist_ok=True)
    job = [sys.executable, "-m", "jobs.publish", "--ds", DS, "--work", str(work)]
    publish = measured(job + ["--warehouse", url], logs / "publish.log")
    if publish["returncode"] != 0:
        raise RuntimeError(f"bench publish --job: the publish step failed; see {logs}/publish.log")
    reference = measured(
        [sys.executable, "-m", "recsys_cli.bench.publish_job", str(work)], logs / "reference.log"
    )
    return {
        "sizes": sizes,
        "warehouse": url.split(":", 1)[0],
        "publish": publish,
        "reference": reference,
    }


def print_publish_job(report: dict) -> None:
    s, p, r = report["sizes"], report["publish"], report["reference"]
    print(
        f"publish step, {s['recommendations']:,} recommendations of {s['users']:,} users against "
        f"{s['interactions']:,} interactions, into {report['warehouse']}:"
    )
    print(
        f"  publish (audit in DuckDB, streamed load)  {p['seconds']:8.1f} s  {p['peak_rss_mb']:8.0f} MB peak"
    )
    print(
        f"  reference: inputs read whole into pandas  {r['seconds']:8.1f} s  {r['peak_rss_mb']:8.0f} MB peak"
    )
    print(f"  peak memory, publish / reference: {p['peak_rss_mb'] / r['peak_rss_mb']:.2f}x")


if __name__ == "__main__":
    read_whole(sys.argv[1])
