"""The tunnel: `POST <tunnel.path>`, where the browser SDK's `tunnel` option sends raw envelopes.

Ad blockers drop requests to Sentry's ingest host, so an app can send its envelopes to a path of its own
instead (`Content-Type: text/plain;charset=UTF-8`, no auth header). The SDK then writes the DSN into each
envelope's header, and that is where the project and key come from here: the DSN must name a configured
project and one of its keys, or the answer is 403, as the tunnel handler in `@sentry/core`
(`handleTunnelRequest`) answers a DSN it doesn't allow; every SDK drops an envelope on a 4xx and never
retries it. The DSN's host is never used: the envelope goes to the project's configured upstream, through the
same pipeline as the envelope endpoint, and its `dsn` header is rewritten to that upstream's. So a DSN
pointing anywhere (an internal address, another port) reaches nothing but this relay's own upstream.

An envelope without a `dsn` can't be attributed to a project. Browser SDKs have sent their client reports
(counts of what they dropped) without one (sentry-javascript issue 4088): such an envelope, client reports
only, is answered 200 `{}` and not forwarded, since the SDK ignores the body of every answer and a 2xx keeps
the browser console free of a failed request. Any other envelope without a `dsn` is 400, as in `@sentry/core`.

CORS headers are on every answer, and OPTIONS is a preflight, as on the `/api/` endpoints.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ..config import Dsn, parse_dsn
from ..errors import HttpError
from ..logs import log_event
from .auth import Auth
from .body import read_body
from .cors import add_cors_headers, preflight_response
from .request import answer, check_origin, parse_body, parse_project_id
from .state import STATE, RelayState

logger = logging.getLogger("relay.ingest")


async def handle_tunnel(request: web.Request) -> web.Response:
    """An envelope from the browser SDK's `tunnel` option, routed by the DSN in its header."""
    try:
        response = await _tunnel(request, request.app[STATE])
    except HttpError as exc:  # the middleware renders it; CORS headers let the SDK read it
        exc.headers.update(_cors_headers(request))
        raise
    add_cors_headers(request, response)
    return response


async def handle_tunnel_preflight(request: web.Request) -> web.Response:
    """CORS preflight for a tunnel on another origin than the page."""
    response = preflight_response()
    add_cors_headers(request, response)
    return response


async def _tunnel(request: web.Request, state: RelayState) -> web.Response:
    envelope = parse_body(await read_body(request, state.config.limits), state)
    dsn_value = envelope.headers.get("dsn")
    if not isinstance(dsn_value, str) or not dsn_value:
        if all(item.type == "client_report" for item in envelope.items):
            log_event(logger, logging.DEBUG, "tunnel: client reports without a dsn, not forwarded",
                      items=len(envelope.items))  # fmt: skip
            return web.json_response({})
        raise HttpError(400, "envelope header has no dsn: the tunnel takes the project and key from it")
    dsn = _parse(dsn_value)
    project_id = parse_project_id(dsn.project_id, "in the envelope header dsn")
    project = state.projects.get(project_id)
    if project is None or dsn.public_key not in project.keys:
        raise HttpError(403, "the envelope header dsn names a project or key this relay does not accept")
    check_origin(request, state, project_id)
    auth = Auth(dsn.public_key)
    accepted = await state.ingest.accept(envelope, project_id, state.projects.authorize(project_id, auth), auth)
    return answer(state, accepted.event_id, accepted.headers)


def _parse(value: str) -> Dsn:
    """The envelope's DSN; 400 without quoting it (it holds the key)."""
    try:
        return parse_dsn(value)
    except ValueError:
        raise HttpError(400, "envelope header dsn is not a DSN like https://<key>@<host>/<project>") from None


def _cors_headers(request: web.Request) -> dict[str, str]:
    """The CORS headers `add_cors_headers` would give this request's answer."""
    response = web.StreamResponse()
    add_cors_headers(request, response)
    return dict(response.headers)
