"""What is left under `/api/`: paths with repeated slashes, wrong methods, and paths no endpoint serves.

- A path with repeated slashes (`/api/42/store//`, `/api//42/envelope/`) is routed as the same path with
  each run folded into one slash, as Sentry Relay's `NormalizePath` middleware does.
- A known path with another method is 405 with `Allow`, as before.
- Any other path is 404 with a JSON `detail` that lists the endpoints this relay serves. (Sentry Relay
  forwards unknown `/api/` paths to its upstream; this relay forwards nothing but envelopes.)

Both resources go last in the router: they try only the resources registered before them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from aiohttp import web
from yarl import URL

from ..errors import HttpError

if TYPE_CHECKING:
    from aiohttp.web_urldispatcher import _InfoDict

# What the 404 names: the ingest endpoints, as an SDK or operator would look for them.
ENDPOINTS = (
    "POST /api/<project>/envelope/",
    "POST|GET /api/<project>/store/",
    "POST|GET /api/store/",
    "POST /api/<project>/security/",
    "POST /api/<project>/csp-report/",
    "POST /api/<project>/minidump/",
    "POST /api/<project>/unreal/<key>/",
    "POST /api/<project>/nel/",
    "POST /api/<project>/events/<event_id>/attachments/",
    "GET|POST /api/<project>/cron/<monitor_slug>/[<key>/]",
    "GET /api/0/relays/live/",
    "GET /api/relay/healthcheck/live/ and /ready/",
)
_SLASHES = re.compile(r"//+")
_SHOWN_PATH = 200  # characters of an unknown path quoted back


class FoldedSlashes(web.AbstractResource):
    """Matches a path with repeated slashes as the resources registered before it match the folded path."""

    def __init__(self, router: web.UrlDispatcher) -> None:
        super().__init__(name=None)
        self._router = router

    @property
    def canonical(self) -> str:
        """Indexed with the `/api/...` resources, after them."""
        return "/api/{path}"

    def url_for(self, **kwargs: str) -> URL:
        """Not a URL of its own."""
        raise RuntimeError("FoldedSlashes builds no URLs")

    async def resolve(self, request: web.Request) -> tuple[web.UrlMappingMatchInfo | None, set[str]]:
        """The match of the folded path, or the methods it allows."""
        raw = request.rel_url.raw_path
        if "//" not in raw:
            return None, set()
        folded = request.clone(rel_url=URL.build(path=_SLASHES.sub("/", raw), encoded=True))
        allowed: set[str] = set()
        for resource in self._router.resources():
            if resource is self:
                break
            match, methods = await resource.resolve(folded)
            if match is not None:
                return match, methods
            allowed |= methods
        return None, allowed

    def add_prefix(self, prefix: str) -> None:
        """Sub-applications are not used."""
        raise RuntimeError("FoldedSlashes can't be mounted under a prefix")

    def get_info(self) -> _InfoDict:
        """Nothing to introspect."""
        return {}

    def raw_match(self, path: str) -> bool:
        """Never the resource of a path as written."""
        return False

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[web.AbstractRoute]:
        return iter(())


async def handle_unknown(request: web.Request) -> web.Response:
    """405 for a known path with another method; 404 naming the endpoints for any other `/api/` path."""
    own = request.match_info.route.resource
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is own:
            break
        _, methods = await resource.resolve(request)
        allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    path = request.path if len(request.path) <= _SHOWN_PATH else request.path[:_SHOWN_PATH] + "..."
    raise HttpError(404, f"no endpoint at {path}; this relay serves: {'; '.join(ENDPOINTS)}")


def add_fallback_routes(app: web.Application) -> None:
    """Register the folding resource and the `/api/` catch-all; call after every other route."""
    app.router.register_resource(FoldedSlashes(app.router))
    app.router.add_route("*", "/api/{path:.*}", handle_unknown, name="api_unknown")
