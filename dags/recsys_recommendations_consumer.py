"""
### recsys_recommendations_consumer

An example of a DAG downstream of the nightly: it is scheduled on the Asset `recsys_recommendations`,
so it runs each time `recsys_nightly`'s publish commits a ds to the warehouse, and reads which ds and
how many rows from the triggering event. Replace its task with what should follow fresh
recommendations (a cache warm-up, an export, a notification). Starts paused like every DAG.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from recsys_airflow.assets import RECOMMENDATIONS

with DAG(
    dag_id="recsys_recommendations_consumer",
    description="Example: runs when recsys_nightly publishes fresh recommendations",
    schedule=[RECOMMENDATIONS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    doc_md=__doc__,
    tags=["recsys", "example"],
) as dag:

    @task
    def fresh_recommendations(triggering_asset_events=None) -> list[dict]:
        """The ds and rows of each publish that triggered this run."""
        published = [
            {"ds": event.extra.get("ds"), "rows": event.extra.get("rows", {})}
            for event in (triggering_asset_events or {}).get(RECOMMENDATIONS, [])
        ]
        for event in published:
            print(f"fresh recommendations: ds={event['ds']} rows={event['rows']}")
        return published

    fresh_recommendations()
