"""CORS for browser SDKs: per-project allowed origins, and the headers SDKs need to read."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from aiohttp import web

ALLOW_HEADERS = (
    "x-sentry-auth, x-requested-with, x-forwarded-for, origin, referer, accept, content-type, "
    "authentication, authorization, content-encoding, transfer-encoding, sentry-trace, baggage"
)
EXPOSE_HEADERS = "x-sentry-error, x-sentry-rate-limits, retry-after"


def origin_allowed(origin: str, allowed: Sequence[str]) -> bool:
    """Whether an Origin matches one of the patterns: Sentry's "Allowed Domains" (`*`, `example.com` for any
    scheme and port, `*.example.com` for it and its subdomains, `https://example.com`, `localhost:3000`), or a
    glob over the whole origin (`https://app-*.example.com`)."""
    origin = origin.lower()
    if "*" in allowed or origin in allowed:
        return True
    if origin == "null":  # sandboxed frames and file:// pages: no origin to check
        return False
    parts = urlsplit(origin)
    try:
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return False
    hosts = ("*", host, f"{host}:{port}") if port else ("*", host)
    return any(_sentry_match(pattern.lower(), parts.scheme, host, hosts) or fnmatchcase(origin, pattern.lower())
               for pattern in allowed)  # fmt: skip


def _sentry_match(pattern: str, scheme: str, host: str, hosts: tuple[str, ...]) -> bool:
    """One entry of Sentry's list: `[scheme://]domain[:port][/path]`; a path can't narrow an origin."""
    pattern_scheme, _, rest = pattern.rpartition("://")
    if (pattern_scheme or "*") not in ("*", scheme):
        return False
    domain = rest.split("/", 1)[0]
    if domain.startswith("*."):
        return host.endswith(domain[1:]) or host == domain[2:]
    return domain in hosts


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
