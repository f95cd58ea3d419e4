"""Printing recommendations from the warehouse with titles and readable reasons."""

from __future__ import annotations

import json

from recsys_core import columns as C
from recsys_core.publish.warehouse import open_warehouse
from recsys_core.redact import redacted

REASON_TEXT = {
    C.REASON_GENRE: "top in {}",
    C.REASON_COUNTRY: "popular in {}",
    C.REASON_GLOBAL: "popular everywhere",
    C.REASON_POPULAR: "popular",
    C.REASON_NEW: "new arrival",
}

EXAMPLE_SQL = """SELECT r.rank, i.title, round(r.predicted_rating, 2) AS predicted, r.reason
FROM recommendations_latest r JOIN items i ON i.ds = r.ds AND i.item_id = r.item_id
WHERE r.user_id = {user} ORDER BY r.rank;"""


def describe_reason(reason: str, titles: dict[int, str]) -> str:
    """'similar_to:1; top_genre:Drama' -> 'similar to Toy Story; top in Drama'."""
    parts = []
    for tag_value in reason.split("; "):
        tag, _, value = tag_value.partition(":")
        if tag == C.REASON_SIMILAR:
            parts.append(f"similar to {titles.get(int(value), value)}")
        else:
            parts.append(REASON_TEXT.get(tag, tag_value).format(value))
    return "; ".join(parts)


def recommendations(url: str, users: list[int], sample: int, ds: str | None) -> list[dict]:
    """Each user's list (given users first, then `sample` more of the lowest ids): ds, model and
    the ranked items with title, scores, reason and the reason as a sentence; [] items when none."""
    wh = open_warehouse(url)
    source = "recommendations WHERE ds = ?::DATE" if ds else "recommendations_latest WHERE TRUE"
    params = [ds] if ds else []
    if sample:
        chosen = wh.query(
            f"SELECT DISTINCT user_id FROM {source} ORDER BY user_id LIMIT {int(sample)}", params
        )
        users = list(users) + [int(u) for u in chosen["user_id"] if int(u) not in users]
    out = []
    for user in users:
        rows = wh.query(
            f"""SELECT r.ds, r.rank, r.item_id, i.title, r.predicted_rating, r.score, r.reason, r.model_version
            FROM (SELECT * FROM {source} AND user_id = ?) r
            LEFT JOIN items i ON i.ds = r.ds AND i.item_id = r.item_id ORDER BY r.rank""",
            params + [user],
        )
        if rows.empty:
            out.append({"user_id": user, "ds": None, "model_version": None, "items": []})
            continue
        catalogue = wh.query("SELECT item_id, title FROM items WHERE ds = ?", [rows["ds"].iloc[0]])
        titles = dict(zip(catalogue["item_id"], catalogue["title"], strict=True))
        items = [
            {
                "rank": int(r.rank),
                "item_id": int(r.item_id),
                "title": r.title,
                "predicted_rating": float(r.predicted_rating),
                "score": float(r.score),
                "reason": r.reason,
                "why": describe_reason(r.reason, titles),
            }
            for r in rows.itertuples()
        ]
        day = f"{rows['ds'].iloc[0]:%Y-%m-%d}"
        out.append(
            {
                "user_id": user,
                "ds": day,
                "model_version": rows["model_version"].iloc[0],
                "items": items,
            }
        )
    return out


def print_recommendations(
    url: str, users: list[int], sample: int, ds: str | None, as_json: bool = False
) -> int:
    found = recommendations(url, users, sample, ds)
    if as_json:
        print(json.dumps(found, indent=2))
        return 0 if found else 1
    if not found:
        print("no user given (use --user ID or --sample N)")
        return 1
    for user in found:
        if not user["items"]:
            print(f"\nuser {user['user_id']}: no recommendations")
            continue
        print(f"\nuser {user['user_id']} (ds {user['ds']}, model {user['model_version']}):")
        for r in user["items"]:
            print(
                f"  {r['rank']:>2}. {str(r['title'])[:48]:<48} {r['predicted_rating']:4.2f}  {r['why']}"
            )
    print(f"\nTry it in SQL ({redacted(url)}):\n{EXAMPLE_SQL.format(user=found[0]['user_id'])}")
    return 0


def similar_items(url: str, item: int, ds: str | None) -> dict:
    """An item's nearest items ("more like this") from item_neighbors, newest ds unless one is given."""
    wh = open_warehouse(url)
    day = ds or wh.query("SELECT max(ds)::VARCHAR AS ds FROM item_neighbors")["ds"].iloc[0]
    rows = wh.query(
        """SELECT n.rank, n.neighbor_id, i.title, n.distance FROM item_neighbors n
        LEFT JOIN items i ON i.ds = n.ds AND i.item_id = n.neighbor_id
        WHERE n.ds = ?::DATE AND n.item_id = ? ORDER BY n.rank""",
        [str(day), item],
    )
    title = wh.query("SELECT title FROM items WHERE ds = ?::DATE AND item_id = ?", [str(day), item])
    neighbors = [
        {
            "rank": int(r.rank),
            "item_id": int(r.neighbor_id),
            "title": r.title,
            "distance": float(r.distance),
        }
        for r in rows.itertuples()
    ]
    return {
        "item_id": item,
        "title": title["title"].iloc[0] if len(title) else None,
        "ds": str(day) if day is not None else None,
        "neighbors": neighbors,
    }


def print_similar(url: str, item: int, ds: str | None, as_json: bool = False) -> int:
    found = similar_items(url, item, ds)
    if as_json:
        print(json.dumps(found, indent=2))
    elif not found["neighbors"]:
        print(f"item {item}: no neighbors for ds {found['ds']}")
    else:
        print(f"items like {item} {found['title'] or ''} (ds {found['ds']}):")
        for r in found["neighbors"]:
            print(f"  {r['rank']:>2}. {str(r['title'])[:56]:<56} distance {r['distance']:.4f}")
    return 0 if found["neighbors"] else 1
