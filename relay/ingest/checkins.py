"""HTTP check-ins for Sentry Crons: `GET|POST /api/<project>/cron/<monitor_slug>[/<sentry_key>]/`.

As Sentry Relay does (`relay-server/src/endpoints/monitor.rs`, `relay-monitors`): with a JSON body
(`Content-Type: application/json`) the body is the check-in, upserted monitor config included; otherwise
the query string carries `status` (required), `check_in_id`, `environment` and `duration`. The monitor slug is
always the one in the path. Either way a `check_in` item goes through the pipeline, and the answer is 202
with no body, also when a quota drops it: Relay never answers a check-in with 429.

The key is the path's last segment, or the usual X-Sentry-Auth, `Authorization: Basic` or `sentry_key`;
both at once is 401, as in Relay.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from ..envelope import Envelope, Item
from ..errors import HttpError
from .auth import Auth, auth_from_request
from .body import read_body
from .request import check_origin, new_event_id, project_id_of, require_auth
from .state import STATE

# The client a check-in is attributed to when the request names none (Relay's `relay-http`).
HTTP_CLIENT = "relay-http"
STATUSES = frozenset({"ok", "error", "in_progress", "missed", "unknown"})
NIL_ID = "0" * 32
_INTERVAL_UNITS = frozenset({"year", "month", "week", "day", "hour", "minute"})
_CONFIG_COUNTS = ("checkin_margin", "max_runtime", "failure_issue_threshold", "recovery_threshold")
_CONFIG_TEXTS = ("timezone", "owner")


class InvalidCheckIn(HttpError):
    """A JSON body that parses but is not a check-in: 422, as Relay's JSON extractor answers."""

    def __init__(self, detail: str) -> None:
        super().__init__(422, f"invalid check-in: {detail}")


async def handle_check_in(request: web.Request) -> web.Response:
    """A monitor check-in over HTTP; 202 once it is taken."""
    state = request.app[STATE]
    project_id = project_id_of(request)
    check_origin(request, state, project_id)
    auth = _auth(request)
    project = state.projects.authorize(project_id, auth)
    slug = request.match_info["monitor_slug"]
    if request.content_type.startswith("application/json"):
        limits = state.config.limits
        body = await read_body(request, limits)
        if len(body) > limits.max_event_size:
            raise HttpError(413, f"check-in of {len(body)} bytes exceeds limits.max_event_size")
        check_in = check_in_from_json(body, slug)
    else:
        check_in = check_in_from_query(request.query, slug)
    item = Item({"type": "check_in", "content_type": "application/json"}, orjson.dumps(check_in))
    envelope = Envelope({"event_id": new_event_id()}, [item])
    try:
        await state.ingest.accept(envelope, project_id, project, auth)
    except HttpError as exc:
        if exc.status != 429:  # a rate-limited check-in is dropped (and counted), never answered with 429
            raise
    return web.Response(status=202)


def _auth(request: web.Request) -> Auth:
    """The key in the path, else the request's credentials; the client defaults to `relay-http`."""
    path_key = request.match_info.get("sentry_key")
    if path_key is None:
        auth = require_auth(request)
    elif auth_from_request(request) is not None:
        raise HttpError(401, "multiple authorization payloads detected: the key is in the path and the request")
    else:
        auth = Auth(path_key)
    return auth if auth.client else Auth(auth.public_key, HTTP_CLIENT)


def check_in_from_query(query: Mapping[str, str], slug: str) -> dict[str, Any]:
    """A check-in from `?status=...&check_in_id=...&environment=...&duration=...`; 400 when one is invalid."""
    status = query.get("status")
    if status is None:
        raise HttpError(400, "missing query parameter status (ok, error or in_progress)")
    check_in: dict[str, Any] = {"check_in_id": NIL_ID, "monitor_slug": slug, "status": _status(status)}
    if "check_in_id" in query:
        check_in_id = _uuid(query["check_in_id"])
        if check_in_id is None:
            raise HttpError(400, "query parameter check_in_id must be a UUID")
        check_in["check_in_id"] = check_in_id
    if "environment" in query:
        check_in["environment"] = query["environment"]
    if "duration" in query:
        try:
            duration = float(query["duration"])
        except ValueError:
            raise HttpError(400, "query parameter duration must be a number of seconds") from None
        if not math.isfinite(duration):
            raise HttpError(400, "query parameter duration must be a number of seconds")
        check_in["duration"] = duration
    return check_in


def check_in_from_json(body: bytes, slug: str) -> dict[str, Any]:
    """A check-in from a JSON body, with the fields Relay reads (others are dropped); 400 or 422 when invalid."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"check-in body is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise InvalidCheckIn("the body must be a JSON object")
    status = data.get("status")
    if not isinstance(status, str):
        raise InvalidCheckIn("status is required: ok, error or in_progress")
    check_in: dict[str, Any] = {"check_in_id": NIL_ID, "monitor_slug": slug, "status": _status(status)}
    if data.get("check_in_id") is not None:
        check_in_id = _uuid(data["check_in_id"])
        if check_in_id is None:
            raise InvalidCheckIn("check_in_id must be a UUID")
        check_in["check_in_id"] = check_in_id
    if data.get("environment") is not None:
        check_in["environment"] = _text(data["environment"], "environment")
    if data.get("duration") is not None:
        duration = data["duration"]
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise InvalidCheckIn("duration must be a number of seconds")
        check_in["duration"] = float(duration)
    if data.get("monitor_config") is not None:
        check_in["monitor_config"] = _monitor_config(data["monitor_config"])
    if data.get("contexts") is not None:
        check_in["contexts"] = _contexts(data["contexts"])
    return check_in


def _status(value: str) -> str:
    """Relay reads any status it doesn't know as `unknown`."""
    return value if value in STATUSES else "unknown"


def _uuid(value: Any) -> str | None:
    """A UUID as 32 lowercase hex digits (how Relay writes ids), or None when `value` is none."""
    try:
        return uuid.UUID(value).hex if isinstance(value, str) else None
    except ValueError:
        return None


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidCheckIn(f"{what} must be a string")
    return value


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidCheckIn(f"{what} must be a whole number of at least 0")
    return value


def _monitor_config(value: Any) -> dict[str, Any]:
    """The monitor upsert: a crontab or interval schedule, and the optional margins, thresholds and owner."""
    if not isinstance(value, dict):
        raise InvalidCheckIn("monitor_config must be an object")
    config: dict[str, Any] = {"schedule": _schedule(value.get("schedule"))}
    for key in _CONFIG_COUNTS:
        if value.get(key) is not None:
            config[key] = _count(value[key], f"monitor_config.{key}")
    for key in _CONFIG_TEXTS:
        if value.get(key) is not None:
            config[key] = _text(value[key], f"monitor_config.{key}")
    return config


def _schedule(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidCheckIn("monitor_config.schedule is required: {type: crontab, value: '0 * * * *'} or interval")
    kind = value.get("type")
    if kind == "crontab":
        return {"type": "crontab", "value": _text(value.get("value"), "monitor_config.schedule.value")}
    if kind == "interval":
        unit = value.get("unit")
        if unit not in _INTERVAL_UNITS:
            raise InvalidCheckIn(f"monitor_config.schedule.unit must be one of {', '.join(sorted(_INTERVAL_UNITS))}")
        return {"type": "interval", "value": _count(value.get("value"), "monitor_config.schedule.value"), "unit": unit}
    raise InvalidCheckIn("monitor_config.schedule.type must be crontab or interval")


def _contexts(value: Any) -> dict[str, Any]:
    """Only the trace context, which links the check-in to a trace."""
    if not isinstance(value, dict):
        raise InvalidCheckIn("contexts must be an object")
    trace = value.get("trace")
    if trace is None:
        return {}
    trace_id = _uuid(trace.get("trace_id")) if isinstance(trace, dict) else None
    if trace_id is None:
        raise InvalidCheckIn("contexts.trace.trace_id must be a trace id (32 hex digits)")
    return {"trace": {"trace_id": trace_id}}
