"""Network Error Logging: `POST /api/<project>/nel/`, the reports browsers send on their own.

The body is a JSON list of reports (`Content-Type: application/reports+json` from the Reporting API, or
`application/json`); anything else is 415. Each report becomes one `nel` item (its JSON as sent), in one
envelope with a new event id: the item type Sentry Relay's NEL endpoint has built since it was added
(`relay-server/src/endpoints/nel.rs`), which the upstream turns into events or logs. The answer is 200 with
no body, also when a quota drops the reports: Relay ignores rate limits on this endpoint, since a browser
would neither read nor honour them.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from ..envelope import Envelope, Item
from ..errors import HttpError
from .body import read_body
from .request import check_origin, new_event_id, project_id_of, require_auth
from .state import STATE

NEL_CONTENT_TYPES = frozenset({"application/json", "application/reports+json"})


async def handle_nel(request: web.Request) -> web.Response:
    """A browser's batch of NEL reports, one `nel` item each; 200 once taken."""
    state = request.app[STATE]
    project_id = project_id_of(request)
    check_origin(request, state, project_id)
    auth = require_auth(request)
    project = state.projects.authorize(project_id, auth)
    if request.content_type not in NEL_CONTENT_TYPES:
        raise HttpError(415, "NEL reports must be application/reports+json or application/json")
    limits = state.config.limits
    body = await read_body(request, limits)
    if len(body) > limits.max_event_size:
        raise HttpError(413, f"NEL body of {len(body)} bytes exceeds limits.max_event_size")
    envelope = Envelope({"event_id": new_event_id()}, nel_items(body, limits.max_envelope_items))
    try:
        await state.ingest.accept(envelope, project_id, project, auth)
    except HttpError as exc:
        if exc.status != 429:  # dropped by a quota (and counted): the browser is told nothing
            raise
    return web.Response(status=200)


def nel_items(body: bytes, max_items: int) -> list[Item]:
    """One `nel` item per report of a JSON list; 400 unless every report is an object, 413 past `max_items`."""
    try:
        reports = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"NEL body is not valid JSON: {exc.msg}") from None
    if not isinstance(reports, list):
        raise HttpError(400, "NEL body must be a JSON list of reports")
    if len(reports) > max_items:
        raise HttpError(413, f"{len(reports)} NEL reports exceed limits.max_envelope_items ({max_items})")
    items = []
    for index, report in enumerate(reports):
        if not isinstance(report, dict):
            raise HttpError(400, f"NEL report {index} must be a JSON object")
        try:
            payload = orjson.dumps(report)
        except TypeError:  # orjson writes at most 254 levels of nesting; no report a browser sends is near it
            raise HttpError(400, f"NEL report {index} is nested too deeply") from None
        items.append(Item({"type": "nel", "content_type": "application/json"}, payload))
    return items
