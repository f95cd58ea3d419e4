"""The Airflow Assets the nightly emits, for DAGs scheduled on them (`schedule=[RECOMMENDATIONS]`).

`publish` emits RECOMMENDATIONS when a ds's recommendations are committed to the warehouse; the event's
extra holds that ds and the rows published per table, so a consumer knows which partition is fresh
(dags/recsys_recommendations_consumer.py is an example). The URI names the warehouse tables, not a
server: the server is the deployment's connection `recsys_warehouse` (an `x-` scheme is Airflow's
convention for one of a project's own).
"""

from __future__ import annotations

from airflow.sdk import Asset

RECOMMENDATIONS = Asset(
    name="recsys_recommendations",
    uri="x-recsys://warehouse/recommendations",
    group="recsys",
    extra={"tables": "recommendations, recommendations_latest, item_neighbors, items"},
)
