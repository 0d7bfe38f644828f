"""The legacy store endpoint and its variants: one JSON event, forwarded as an envelope.

- `POST /api/<project>/store/`: the event as the body (JSON, or base64 of zlib'd JSON), or an envelope.
- `GET /api/<project>/store/?sentry_data=<event>&sentry_key=...`: the image beacon of old browser SDKs;
  answered with a transparent 1x1 GIF, as Sentry Relay does (`relay-server/src/endpoints/store.rs`).
- `/api/store/`: the same without a project id in the path. Sentry Relay resolves the project from the
  key; here the key must belong to exactly one configured project.
"""

from __future__ import annotations

from aiohttp import web

from ..config import ProjectConfig
from ..envelope import Envelope
from ..errors import HttpError
from .auth import Auth, check_envelope_dsn
from .body import read_body
from .legacy import store_to_envelope
from .request import answer, check_origin, parse_body, project_id_of, require_auth
from .state import STATE, RelayState

# A transparent 1x1 GIF (GIF89a, one-entry palette, transparency extension).
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


async def handle_store(request: web.Request) -> web.Response:
    """`POST /api/<project>/store/`: one JSON event (legacy SDKs), forwarded as an envelope."""
    state = request.app[STATE]
    project_id = project_id_of(request)
    check_origin(request, state, project_id)
    return await _store(request, state, project_id, require_auth(request))


async def handle_store_beacon(request: web.Request) -> web.Response:
    """`GET /api/<project>/store/?sentry_data=...`: the event in the query string; answers a 1x1 GIF."""
    state = request.app[STATE]
    project_id = project_id_of(request)
    check_origin(request, state, project_id)
    return await _beacon(request, state, project_id, require_auth(request))


async def handle_store_by_key(request: web.Request) -> web.Response:
    """`/api/store/` (POST, or GET as a beacon): the project is the one the key belongs to."""
    state = request.app[STATE]
    auth = require_auth(request)
    project_id = project_for_key(state.config.projects, auth.public_key).id
    check_origin(request, state, project_id)
    if request.method == "GET":
        return await _beacon(request, state, project_id, auth)
    return await _store(request, state, project_id, auth)


def project_for_key(projects: tuple[ProjectConfig, ...], public_key: str) -> ProjectConfig:
    """The one configured project that lists this key; 401 when none does or several do."""
    # A linear scan: the list is the config's, a handful of projects, and this endpoint is legacy.
    owners = [project for project in projects if public_key in project.keys]
    if not owners:
        raise HttpError(401, "unknown public key: no configured project has it")
    if len(owners) > 1:
        ids = ", ".join(str(project.id) for project in owners)
        raise HttpError(401, f"the public key belongs to several projects ({ids}): use /api/<project>/store/")
    return owners[0]


async def _store(request: web.Request, state: RelayState, project_id: int, auth: Auth) -> web.Response:
    project = state.projects.authorize(project_id, auth)
    body = await read_body(request, state.config.limits)
    envelope: Envelope
    if request.content_type == "application/x-sentry-envelope":
        envelope = parse_body(body, state)
        check_envelope_dsn(envelope.headers, project_id, auth)
    else:
        envelope = store_to_envelope(body, state.config.limits.max_event_size)
    accepted = await state.ingest.accept(envelope, project_id, project, auth)
    return answer(state, accepted.event_id, accepted.headers)


async def _beacon(request: web.Request, state: RelayState, project_id: int, auth: Auth) -> web.Response:
    project = state.projects.authorize(project_id, auth)
    data = request.query.get("sentry_data")
    if not data:
        raise HttpError(400, "missing query parameter sentry_data (the event, as JSON or base64)")
    envelope = store_to_envelope(data.encode("utf-8"), state.config.limits.max_event_size)
    accepted = await state.ingest.accept(envelope, project_id, project, auth)
    return web.Response(body=PIXEL, content_type="image/gif", headers=accepted.headers)
