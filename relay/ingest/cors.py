"""CORS for browser SDKs: per-project allowed origins, and the headers SDKs need to read."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase

from aiohttp import web

ALLOW_HEADERS = (
    "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, content-type, "
    "authentication, authorization, content-encoding, transfer-encoding, sentry-trace, baggage"
)
EXPOSE_HEADERS = "x-sentry-error, x-sentry-rate-limits, retry-after"


def origin_allowed(origin: str, allowed: Sequence[str]) -> bool:
    """Whether an Origin matches one of the patterns (`*`, exact, or globs like `https://*.example.com`)."""
    origin = origin.lower()
    return any(pattern == "*" or fnmatchcase(origin, pattern.lower()) for pattern in allowed)


def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Let a browser read the answer, including rate-limit headers."""
    origin = request.headers.get("Origin")
    response.headers["Access-Control-Allow-Origin"] = origin or "*"
    response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    if origin:
        response.headers["Vary"] = "Origin"


def preflight_response() -> web.Response:
    """The answer to an OPTIONS preflight."""
    return web.Response(
        status=200,
        headers={
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": "3600",
        },
    )
