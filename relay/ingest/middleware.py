"""One middleware for every request: JSON errors, CORS headers, request metrics."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from ..errors import HttpError, Unavailable
from ..logs import log_event, log_failure
from .body import BodyTimeout, ClientDisconnected, release
from .cors import add_cors_headers
from .state import STATE

logger = logging.getLogger("relay.http")

_PASS_HEADERS = ("Allow", "Retry-After")
# The `status` label of a request whose client went away mid-body: no status was ever sent (nginx logs 499).
CLIENT_ABORT = "client_abort"


@web.middleware
async def relay_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render errors as `{"detail": ...}`, add CORS on /api/, and count requests by endpoint and status."""
    started = time.perf_counter()
    response: web.StreamResponse
    status: str | None = None
    try:
        response = await handler(request)
    except Unavailable as exc:  # self-protection (in-flight budget, spool): logged once per episode where it refuses
        response = web.json_response({"detail": exc.detail}, status=exc.status, headers=exc.headers)
    except ClientDisconnected as exc:  # routine on flaky networks: counted, never an error
        log_event(logger, logging.DEBUG, "client disconnected mid-body", endpoint=_endpoint(request),
                  received=exc.received, expected=exc.expected)  # fmt: skip
        response = web.Response(status=499)  # written to a closed connection: nobody reads it
        status = CLIENT_ABORT
    except HttpError as exc:
        response = web.json_response({"detail": exc.detail}, status=exc.status, headers=exc.headers)
        if isinstance(exc, BodyTimeout):
            response.force_close()  # a stalled client's connection goes
        if exc.status >= 500:  # (the route, not the path: a path is the client's text)
            log_event(logger, logging.ERROR, "request failed", endpoint=_endpoint(request), status=exc.status,
                      detail=exc.detail)  # fmt: skip
    except web.HTTPException as exc:
        headers = {k: v for k, v in exc.headers.items() if k in _PASS_HEADERS}
        detail = exc.reason if exc.status != 404 else f"no endpoint at {request.path}"
        response = web.json_response({"detail": detail}, status=exc.status, headers=headers)
    except Exception as exc:
        log_failure(logger, "unhandled error", exc, endpoint=_endpoint(request))
        response = web.json_response({"detail": "internal error"}, status=500)
    finally:
        release(request)  # the body's bytes go back to the in-flight budget
    if request.path.startswith("/api/"):
        add_cors_headers(request, response)
    route = request.match_info.route
    endpoint = route.name or "unmatched"
    status = status or str(response.status)
    metrics = request.app[STATE].metrics
    metrics.requests_by(endpoint, status).inc()
    metrics.request_duration_by(endpoint, status).observe(time.perf_counter() - started)
    return response


def _endpoint(request: web.Request) -> str:
    """The name of the route a request matched (what logs say instead of its path)."""
    return request.match_info.route.name or "unmatched"
