"""HTTP handlers for the Sentry ingest endpoints and the relay's own health and metrics."""

from __future__ import annotations

from aiohttp import web

from ..errors import HttpError
from .attachments_upload import handle_attachments
from .auth import auth_from_envelope_dsn, auth_from_request, check_envelope_dsn
from .body import read_body
from .checkins import handle_check_in
from .cors import preflight_response
from .fallback import add_fallback_routes
from .legacy import minidump_to_envelope, security_to_envelope
from .nel import handle_nel
from .request import answer, check_origin, parse_body, project_id_of, require_auth
from .state import STATE
from .store import handle_store, handle_store_beacon, handle_store_by_key
from .tunnel import handle_tunnel, handle_tunnel_preflight
from .unreal_endpoint import accept_crash, handle_unreal


async def handle_envelope(request: web.Request) -> web.Response:
    """`POST /api/<project>/envelope/`: the protocol every current SDK speaks."""
    state = request.app[STATE]
    project_id = project_id_of(request)
    check_origin(request, state, project_id)
    auth = auth_from_request(request)
    if auth is not None:
        state.projects.authorize(project_id, auth)  # refuse before reading a body we would discard
    envelope = parse_body(await read_body(request, state.config.limits), state)
    if auth is None:
        auth = auth_from_envelope_dsn(envelope.headers, project_id)
    else:
        check_envelope_dsn(envelope.headers, project_id, auth)
    project = state.projects.authorize(project_id, auth)
    accepted = await state.ingest.accept(envelope, project_id, project, auth)
    return answer(state, accepted.event_id, accepted.headers)


async def handle_security(request: web.Request) -> web.Response:
    """`POST /api/<project>/security/`: browser CSP and similar reports."""
    state = request.app[STATE]
    project_id = project_id_of(request)
    check_origin(request, state, project_id)
    auth = require_auth(request)
    project = state.projects.authorize(project_id, auth)
    envelope = security_to_envelope(await read_body(request, state.config.limits), request.query)
    await state.ingest.accept(envelope, project_id, project, auth)
    return web.Response(status=200)


async def handle_minidump(request: web.Request) -> web.Response:
    """`POST /api/<project>/minidump/`: native crash reports; answers the event id as text."""
    state = request.app[STATE]
    project_id = project_id_of(request)
    check_origin(request, state, project_id)
    auth = require_auth(request)
    project = state.projects.authorize(project_id, auth)
    limits = state.config.limits
    envelope = await minidump_to_envelope(
        await read_body(request, limits), request.headers, limits.max_decompressed_size
    )
    return await accept_crash(state, envelope, project_id, project, auth)


async def handle_preflight(request: web.Request) -> web.Response:
    """CORS preflight for browser SDKs; one asking for a method the endpoint doesn't take is refused (400), as
    Relay refuses it (check-ins take GET too)."""
    asked = request.headers.get("Access-Control-Request-Method", "").upper()
    allowed = ("POST", "GET") if "/cron/" in request.path else ("POST",)
    if asked and asked not in allowed:
        raise HttpError(400, f"CORS preflight for {asked[:16]!r}: this endpoint takes {' and '.join(allowed)}")
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


# Every /api/ endpoint a browser may call with custom headers (and so preflight): the path after `/api/`.
_PREFLIGHT = (
    r"/api/{path:store|[^/]+/(?:envelope|store|security|csp-report|minidump|nel"
    r"|events/[^/]+/attachments|cron/[^/]+(?:/[^/]+)?)}{slash:/?}"
)


def add_routes(app: web.Application) -> None:
    """Register every endpoint (the tunnel when `tunnel` is configured), then the `/api/` fallbacks."""
    router = app.router
    router.add_post(r"/api/{project_id}/envelope{slash:/?}", handle_envelope, name="envelope")
    router.add_post(r"/api/{project_id}/store{slash:/?}", handle_store, name="store")
    router.add_get(r"/api/{project_id}/store{slash:/?}", handle_store_beacon, name="store_beacon", allow_head=False)
    store_by_key = router.add_resource(r"/api/store{slash:/?}", name="store_by_key")
    store_by_key.add_route("POST", handle_store_by_key)
    store_by_key.add_route("GET", handle_store_by_key)
    router.add_post(r"/api/{project_id}/security{slash:/?}", handle_security, name="security")
    router.add_post(r"/api/{project_id}/csp-report{slash:/?}", handle_security, name="csp_report")
    router.add_post(r"/api/{project_id}/minidump{slash:/?}", handle_minidump, name="minidump")
    router.add_post(r"/api/{project_id}/nel{slash:/?}", handle_nel, name="nel")
    router.add_post(r"/api/{project_id}/unreal/{sentry_key}/", handle_unreal, name="unreal")
    router.add_post(
        r"/api/{project_id}/events/{event_id}/attachments{slash:/?}", handle_attachments, name="attachments"
    )
    for name, path in (
        ("cron_keyed", r"/api/{project_id}/cron/{monitor_slug}/{sentry_key}{slash:/?}"),
        ("cron", r"/api/{project_id}/cron/{monitor_slug}{slash:/?}"),
    ):
        cron = router.add_resource(path, name=name)
        cron.add_route("GET", handle_check_in)
        cron.add_route("POST", handle_check_in)
    router.add_route("OPTIONS", _PREFLIGHT, handle_preflight, name="preflight")
    router.add_get("/healthz", handle_live, name="healthz")
    router.add_get("/readyz", handle_ready, name="readyz")
    router.add_get("/api/relay/healthcheck/live/", handle_live, name="live")
    router.add_get("/api/relay/healthcheck/ready/", handle_ready, name="ready")
    router.add_get("/api/0/relays/live/", handle_live, name="relays_live")  # what a Relay in front checks
    router.add_get("/metrics", handle_metrics, name="metrics")
    tunnel = app[STATE].config.tunnel
    if tunnel is not None:
        router.add_post(tunnel.path, handle_tunnel, name="tunnel")
        router.add_route("OPTIONS", tunnel.path, handle_tunnel_preflight, name="tunnel_preflight")
    add_fallback_routes(app)
