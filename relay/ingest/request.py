"""The parts of an ingest request every endpoint reads: project id, origin, credentials, envelope body, answer."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from aiohttp import web

from ..envelope import Envelope, parse_envelope
from ..errors import EnvelopeError, HttpError, TooManyItems
from .auth import Auth, auth_from_request
from .cors import origin_allowed
from .state import RelayState

_MAX_ID_DIGITS = 18  # a project id fits in a signed 64-bit integer


def project_id_of(request: web.Request) -> int:
    """The numeric project id in the URL, or 400."""
    return parse_project_id(request.match_info.get("project_id", ""), "in the URL")


def parse_project_id(raw: str, where: str) -> int:
    """A project id written as digits, or 400 naming where it came from."""
    if not raw.isdigit() or len(raw) > _MAX_ID_DIGITS:
        raise HttpError(400, f"invalid project id {raw[:40]!r} {where}")
    return int(raw)


def check_origin(request: web.Request, state: RelayState, project_id: int) -> None:
    """403 when the browser's Origin (or Referer) is not one the project allows."""
    origin = request.headers.get("Origin") or _origin_of(request.headers.get("Referer"))
    if not origin:
        return
    project = state.projects.get(project_id)
    allowed = project.allowed_origins if project is not None else ("*",)
    if not origin_allowed(origin, allowed):
        raise HttpError(403, f"origin {origin!r} is not allowed for project {project_id}")


def _origin_of(referer: str | None) -> str | None:
    """The origin part of a Referer, which browsers send when they omit Origin."""
    if not referer:
        return None
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def require_auth(request: web.Request) -> Auth:
    """The request's credentials, or 401."""
    auth = auth_from_request(request)
    if auth is None:
        raise HttpError(401, "missing authorization information: send X-Sentry-Auth or sentry_key")
    return auth


def answer(state: RelayState, event_id: str | None, headers: dict[str, str]) -> web.Response:
    """The JSON answer of the envelope and store endpoints: `{"id": ...}`, or `{}` without an event."""
    body = {"id": event_id} if event_id else {}
    return web.json_response(body, headers=headers, dumps=state.dumps)


def parse_body(body: bytes, state: RelayState) -> Envelope:
    """An envelope body within `limits.max_envelope_size` and `max_envelope_items`; 413 or 400 otherwise."""
    limit = state.config.limits.max_envelope_size
    if len(body) > limit:
        raise HttpError(413, f"envelope of {len(body)} bytes exceeds limits.max_envelope_size")
    try:
        return parse_envelope(body, state.config.limits.max_envelope_items)
    except TooManyItems as exc:
        raise HttpError(413, str(exc)) from None
    except EnvelopeError as exc:
        raise HttpError(400, f"invalid envelope: {exc}") from None


def parse_uuid(raw: str, what: str) -> str:
    """A UUID (hyphenated or 32 hex digits) as Sentry writes ids: 32 lowercase hex digits; 400 otherwise."""
    try:
        return uuid.UUID(raw).hex
    except ValueError:
        raise HttpError(400, f"invalid {what}: expected a UUID") from None


def new_event_id() -> str:
    """A fresh event id, for envelopes an endpoint builds itself."""
    return uuid.uuid4().hex
