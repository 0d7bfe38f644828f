"""HTTP handlers for the Sentry ingest endpoints and the relay's own health and metrics."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from ..envelope import Envelope, parse_envelope
from ..errors import EnvelopeError, HttpError, TooManyItems
from .auth import Auth, auth_from_envelope_dsn, auth_from_request, check_envelope_dsn
from .body import read_body
from .cors import origin_allowed, preflight_response
from .legacy import minidump_to_envelope, security_to_envelope, store_to_envelope
from .state import STATE, RelayState


def _project_id(request: web.Request) -> int:
    raw = request.match_info.get("project_id", "")
    if not raw.isdigit() or len(raw) > 18:
        raise HttpError(400, f"invalid project id {raw!r} in the URL")
    return int(raw)


def _check_origin(request: web.Request, state: RelayState, project_id: int) -> None:
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


def _require_auth(request: web.Request) -> Auth:
    auth = auth_from_request(request)
    if auth is None:
        raise HttpError(401, "missing authorization information: send X-Sentry-Auth or sentry_key")
    return auth


def _answer(state: RelayState, event_id: str | None, headers: dict[str, str]) -> web.Response:
    body = {"id": event_id} if event_id else {}
    return web.json_response(body, headers=headers, dumps=state.dumps)


async def handle_envelope(request: web.Request) -> web.Response:
    """`POST /api/<project>/envelope/`: the protocol every current SDK speaks."""
    state = request.app[STATE]
    project_id = _project_id(request)
    _check_origin(request, state, project_id)
    auth = auth_from_request(request)
    if auth is not None:
        state.projects.authorize(project_id, auth)  # refuse before reading a body we would discard
    envelope = _parse(await read_body(request, state.config.limits), state)
    if auth is None:
        auth = auth_from_envelope_dsn(envelope.headers, project_id)
    else:
        check_envelope_dsn(envelope.headers, project_id, auth)
    project = state.projects.authorize(project_id, auth)
    accepted = await state.ingest.accept(envelope, project_id, project, auth)
    return _answer(state, accepted.event_id, accepted.headers)


async def handle_store(request: web.Request) -> web.Response:
    """`POST /api/<project>/store/`: one JSON event (legacy SDKs), forwarded as an envelope."""
    state = request.app[STATE]
    project_id = _project_id(request)
    _check_origin(request, state, project_id)
    auth = _require_auth(request)
    project = state.projects.authorize(project_id, auth)
    body = await read_body(request, state.config.limits)
    if request.content_type == "application/x-sentry-envelope":
        envelope = _parse(body, state)
        check_envelope_dsn(envelope.headers, project_id, auth)
    else:
        envelope = store_to_envelope(body, state.config.limits.max_event_size)
    accepted = await state.ingest.accept(envelope, project_id, project, auth)
    return _answer(state, accepted.event_id, accepted.headers)


async def handle_security(request: web.Request) -> web.Response:
    """`POST /api/<project>/security/`: browser CSP and similar reports."""
    state = request.app[STATE]
    project_id = _project_id(request)
    _check_origin(request, state, project_id)
    auth = _require_auth(request)
    project = state.projects.authorize(project_id, auth)
    envelope = security_to_envelope(await read_body(request, state.config.limits), request.query)
    await state.ingest.accept(envelope, project_id, project, auth)
    return web.Response(status=200)


async def handle_minidump(request: web.Request) -> web.Response:
    """`POST /api/<project>/minidump/`: native crash reports; answers the event id as text."""
    state = request.app[STATE]
    project_id = _project_id(request)
    _check_origin(request, state, project_id)
    auth = _require_auth(request)
    project = state.projects.authorize(project_id, auth)
    limits = state.config.limits
    envelope = await minidump_to_envelope(
        await read_body(request, limits), request.headers, limits.max_decompressed_size
    )
    accepted = await state.ingest.accept(envelope, project_id, project, auth)
    return web.Response(text=accepted.event_id or "", headers=accepted.headers)


async def handle_preflight(request: web.Request) -> web.Response:
    """CORS preflight for browser SDKs."""
    return preflight_response()


async def handle_live(request: web.Request) -> web.Response:
    """Liveness: the process is up."""
    return web.json_response({"status": "ok", "is_healthy": True})


async def handle_ready(request: web.Request) -> web.Response:
    """Readiness: false while starting, while draining for shutdown, and once the spool can't keep envelopes."""
    ready = request.app[STATE].is_ready()
    status = "ready" if ready else "not_ready"
    return web.json_response({"status": status, "is_healthy": ready}, status=200 if ready else 503)


async def handle_metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    state = request.app[STATE]
    await state.refresh_gauges()
    return web.Response(
        body=state.metrics.render(), content_type="text/plain", charset="utf-8", headers={"X-Version": "0.0.4"}
    )


def _parse(body: bytes, state: RelayState) -> Envelope:
    limit = state.config.limits.max_envelope_size
    if len(body) > limit:
        raise HttpError(413, f"envelope of {len(body)} bytes exceeds limits.max_envelope_size")
    try:
        return parse_envelope(body, state.config.limits.max_envelope_items)
    except TooManyItems as exc:
        raise HttpError(413, str(exc)) from None
    except EnvelopeError as exc:
        raise HttpError(400, f"invalid envelope: {exc}") from None


def add_routes(app: web.Application) -> None:
    """Register every endpoint."""
    app.router.add_post(r"/api/{project_id}/envelope{slash:/?}", handle_envelope, name="envelope")
    app.router.add_post(r"/api/{project_id}/store{slash:/?}", handle_store, name="store")
    app.router.add_post(r"/api/{project_id}/security{slash:/?}", handle_security, name="security")
    app.router.add_post(r"/api/{project_id}/csp-report{slash:/?}", handle_security, name="csp_report")
    app.router.add_post(r"/api/{project_id}/minidump{slash:/?}", handle_minidump, name="minidump")
    app.router.add_route(
        "OPTIONS",
        r"/api/{project_id}/{endpoint:envelope|store|security|csp-report|minidump}{slash:/?}",
        handle_preflight,
        name="preflight",
    )
    app.router.add_get("/healthz", handle_live, name="healthz")
    app.router.add_get("/readyz", handle_ready, name="readyz")
    app.router.add_get("/api/relay/healthcheck/live/", handle_live, name="live")
    app.router.add_get("/api/relay/healthcheck/ready/", handle_ready, name="ready")
    app.router.add_get("/metrics", handle_metrics, name="metrics")
