"""What a trigger of the nightly run may change, and what it may not (README "Security").

A trigger (the DAG's trigger form, the REST API, `recsys run`) chooses the ds and a few settings of
one run. The folders a run reads and writes, the warehouse it publishes to and the config file are
the deployment's (environment variables and the Airflow connection `recsys_warehouse`), never a
trigger's. Of the config, only TRIGGER_SETTINGS may be changed, each within its bounds: nothing
that switches off a check (validation, the model gate), moves data elsewhere or sizes the cluster.
The bounds are JSON schemas, so Airflow refuses an out-of-bounds trigger before any task runs; the
jobs check them again (trigger_overrides), so a run started some other way is held to the same rules.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from recsys_core.config import MODEL_MODES
from recsys_core.errors import ConfigError

# a ds later than this many days after today (UTC) is refused: a future date would own the
# "latest" recommendations until that day came
MAX_DAYS_AHEAD = 1
MAX_TOP_N = 1000  # a mistyped list length cannot publish a huge table


def _int(low: int, high: int, description: str) -> dict:
    return {"type": "integer", "minimum": low, "maximum": high, "description": description}


# "section.key" -> the JSON schema of the values a trigger may give it
TRIGGER_SETTINGS: dict[str, dict] = {
    "ranking.top_n": _int(1, MAX_TOP_N, "recommendations kept per user"),
    "ranking.new_slots": _int(0, 10, "places of each list kept for new arrivals"),
    "retrieval.recent_items": _int(1, 200, "recent items whose neighbours are candidates"),
    "retrieval.similar_per_item": _int(1, 200, "neighbours taken per recent item"),
    "retrieval.top_genres": _int(1, 20, "the user's genres whose top items are candidates"),
    "retrieval.items_per_genre": _int(1, 500, "top items taken per genre"),
    "retrieval.country_items": _int(1, 1000, "top items of the user's country"),
    "retrieval.new_items": _int(0, 200, "new arrivals scored per user (0: none)"),
    "similarity.k": _int(1, 200, "nearest items kept per item"),
    "model.mode": {"type": "string", "enum": list(MODEL_MODES), "description": "model function"},
    "model.tune": {"type": "boolean", "description": "search the model's settings first"},
    "model.epochs": _int(1, 50, "training epochs"),
    "model.seed": _int(0, 2**31 - 1, "training seed"),
}

# the DAG's own params that set a config key, param -> "section.key" (bounds: TRIGGER_SETTINGS)
PARAM_SETTINGS = {"top_n": "ranking.top_n", "model_mode": "model.mode", "tune_model": "model.tune"}
# every param of the DAG; Airflow passes on any other key of a trigger's conf, so the jobs refuse it
TRIGGER_PARAMS = ("ds", *PARAM_SETTINGS, "settings")


class TriggerError(ConfigError):
    """A trigger asked for something a trigger may not do: the message says what and why."""


def settings_schema() -> dict:
    """The JSON schema of the DAG param `settings`: an object of allowed keys, each with its bounds."""
    return {"type": "object", "properties": TRIGGER_SETTINGS, "additionalProperties": False}


def _valid(key: str, value: Any) -> bool:
    rule = TRIGGER_SETTINGS[key]
    if rule["type"] == "boolean":
        return isinstance(value, bool)
    if rule["type"] == "string":
        return value in rule["enum"]
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and rule["minimum"] <= value <= rule["maximum"]
    )


def check_setting(key: str, value: Any) -> None:
    if key not in TRIGGER_SETTINGS:
        raise TriggerError(
            f"trigger setting {key!r} may not be changed by a trigger; allowed: "
            f"{', '.join(TRIGGER_SETTINGS)} (the rest is the deployment's config file)"
        )
    if not _valid(key, value):
        rule = {k: v for k, v in TRIGGER_SETTINGS[key].items() if k != "description"}
        raise TriggerError(f"trigger setting {key}={value!r} is out of bounds: {json.dumps(rule)}")


def trigger_overrides(params: Mapping[str, Any]) -> list[str]:
    """The config overrides ("section.key=value" lines) of a run's params: the PARAM_SETTINGS that
    are set (None or "" keeps the config's value), then the `settings` object, each checked against
    TRIGGER_SETTINGS. Raises TriggerError naming the first param or key that is not allowed or out
    of bounds."""
    unknown = sorted(set(params) - set(TRIGGER_PARAMS))
    if unknown:
        raise TriggerError(
            f"trigger param {unknown[0]!r} is not accepted (params: {', '.join(TRIGGER_PARAMS)}): the "
            "folders, the warehouse and the config file are the deployment's"
        )
    chosen: dict[str, Any] = {}
    for param, key in PARAM_SETTINGS.items():
        value = params.get(param)
        if value is not None and value != "":
            chosen[key] = value
    settings = params.get("settings") or {}
    if not isinstance(settings, Mapping):
        raise TriggerError(
            f"trigger param settings must be an object of key: value, got {settings!r}"
        )
    chosen.update(settings)
    for key, value in chosen.items():
        check_setting(key, value)
    return [f"{key}={json.dumps(value)}" for key, value in chosen.items()]


def check_ds_not_ahead(ds: str, today: dt.date | None = None) -> str:
    """ds itself when it is at most MAX_DAYS_AHEAD after today (UTC), else TriggerError."""
    today = today or dt.datetime.now(dt.UTC).date()
    latest = today + dt.timedelta(days=MAX_DAYS_AHEAD)
    if dt.date.fromisoformat(ds) > latest:
        raise TriggerError(
            f"ds {ds} lies after {latest} (tomorrow, UTC): a run for a future date would own the "
            "latest recommendations until that day"
        )
    return ds
