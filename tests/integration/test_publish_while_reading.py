"""What readers of the warehouse rely on while a big ds is published (backfills in any order and two
runs at once: tests/integration/test_nightly_dag.py)."""

import threading
import time

import numpy as np
import pyarrow as pa

from recsys_core.publish.warehouse import open_warehouse


def _recommendations(users: int, per_user: int, run: str) -> pa.Table:
    user = np.repeat(np.arange(users, dtype=np.int64), per_user)
    rank = np.tile(np.arange(1, per_user + 1, dtype=np.int32), users)
    score = np.tile(np.linspace(0.9, 0.1, per_user), users)
    n = len(user)
    return pa.table(
        {
            "user_id": user,
            "rank": rank,
            "item_id": user * 10 + rank,
            "score": score,
            "predicted_rating": score * 2 + 3,
            "reason": pa.array(["top_genre:Drama"] * n),
            "model_version": pa.array([run] * n),
            "run_id": pa.array([run] * n),
        }
    )


def test_readers_see_the_complete_old_or_new_ds_during_a_million_user_publish(pg_url):
    import psycopg

    wh = open_warehouse(pg_url)
    users = 1_000_000
    wh.publish("2026-04-01", "old", {"recommendations": _recommendations(users, 3, "old")}, "old")
    valid = {(3 * users, "old", "old"), (2 * users, "new", "new")}
    seen, errors, publishing, stop = [], [], threading.Event(), threading.Event()
    published_at = [float("inf")]  # when publish returned: reads started later must see the new ds
    after = [0, 0, 0]  # per reader: reads started after publish returned

    def reader(n: int):
        with psycopg.connect(pg_url, autocommit=True) as con:
            while not stop.is_set():
                started = time.time()
                try:
                    row = con.execute(
                        "SELECT count(*), min(run_id), max(run_id) FROM recommendations_latest"
                    ).fetchone()
                    seen.append((tuple(row), publishing.is_set(), started > published_at[0]))
                    after[n] += started > published_at[0]
                except (
                    Exception
                ) as exc:  # a missing relation or a failed read is a broken guarantee
                    errors.append(repr(exc))

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    time.sleep(1)
    publishing.set()
    started = time.time()
    result = wh.publish(
        "2026-04-01", "new", {"recommendations": _recommendations(users, 2, "new")}, "new"
    )
    seconds = time.time() - started
    published_at[0] = time.time()
    publishing.clear()
    deadline = time.time() + 600  # each reader reads once more after the switch, however loaded
    while min(after) < 1 and time.time() < deadline and not errors:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join(timeout=600)
    assert result.status == "published" and errors == []
    assert {row for row, _, _ in seen} <= valid, {row for row, _, _ in seen} - valid
    during = [row for row, busy, _ in seen if busy]
    assert during, f"no read overlapped the {seconds:.0f}s publish"
    assert (3 * users, "old", "old") in {row for row, _, _ in seen}
    later = {row for row, _, late in seen if late}
    assert min(after) >= 1 and later == {(2 * users, "new", "new")}, later
