"""The rule playground: one self-contained page and a JSON API, served on the admin listener only.

The admin listener is a separate aiohttp site (127.0.0.1:3001 by default, off unless `admin.enabled`)
with none of the ingest app's routes, middleware or DSN auth. Nothing posted here is stored, logged
or forwarded. Explaining runs in a worker thread, one request at a time, with exactly the server's
rules (see `Playground`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from ..config import Config, ProjectConfig
from ..errors import RelayError
from ..logs import log_event
from ..rules.explain import ExplainError, Explanation, explain_event, parse_event
from ..rules.loader import RuleError, parse_pack
from ..scrub.engine import Scrubber, ScrubError
from ..scrub.registry import ScrubberRegistry

logger = logging.getLogger("relay.admin")

DRAFT_SOURCE = "draft.yml"  # how the draft rule file is named in problems and in `rules`
_BODY_KEYS = ("project", "event", "rules_yaml")
_MAX_BODY = 4 * 1024**2
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RulesSource = Callable[[], ScrubberRegistry]  # the server's current rules (a reload replaces them)


class BadRequest(RelayError):
    """A playground request that can't be explained; answered 400 with a `detail` (and `problems`)."""

    def __init__(self, detail: str, problems: list[str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problems = problems


class Playground:
    """Explains events with a project's rules, optionally plus a draft rule file.

    `rules` returns the server's current rules (so a reload shows here too); without it, the rules
    are loaded once, here. Explaining runs in a worker thread, so it never uses the server's own
    scrubbers (their caches are not thread-safe) but a twin of each: the same rules, its own caches.
    """

    def __init__(self, config: Config, rules: RulesSource | None = None) -> None:
        self._config = config
        self._rules: RulesSource = rules if rules is not None else _fixed(ScrubberRegistry(config))
        self._twins: weakref.WeakKeyDictionary[Scrubber, Scrubber] = weakref.WeakKeyDictionary()
        self._lock = asyncio.Lock()

    def projects(self) -> dict[str, Any]:
        """The projects to pick from, each with its rule packs."""
        return {
            "default_rules": list(self._config.rules),
            "projects": [
                {"id": p.id, "rules": list(self._config.rules_for(p)), "disabled": p.disabled}
                for p in self._config.projects
            ],
            "draft": "appended",  # a draft's rules run after the project's, as if appended to its `rules:`
        }

    async def explain(self, body: Any) -> Explanation:
        """Validate a request body and explain its event (serialized: the scrubbers have caches)."""
        project_id, event, draft = self._parse(body)
        async with self._lock:
            return await asyncio.to_thread(self._explain, project_id, event, draft)

    def _parse(self, body: Any) -> tuple[int | None, dict[str, Any], str | None]:
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object with `event` (and `project`, `rules_yaml`)")
        unknown = sorted(set(body) - set(_BODY_KEYS))
        if unknown:
            raise BadRequest(f"unknown key(s) {', '.join(unknown)}; valid keys are: {', '.join(_BODY_KEYS)}")
        project_id = body.get("project")
        if project_id is not None and (isinstance(project_id, bool) or not isinstance(project_id, int)):
            raise BadRequest(f"project must be a project id (a number) or null, got {project_id!r}")
        if project_id is not None and self._config.project(project_id) is None:
            known = ", ".join(str(p.id) for p in self._config.projects) or "none"
            raise BadRequest(f"unknown project {project_id} (configured projects: {known})")
        raw = body.get("event")
        if raw is None:
            raise BadRequest("event: paste an event (a JSON object)")
        if isinstance(raw, str):
            try:
                event = parse_event(raw.encode("utf-8", "surrogatepass"), "event")
            except ExplainError as exc:
                raise BadRequest(str(exc)) from None
        elif isinstance(raw, dict):
            event = raw
        else:
            raise BadRequest("event: must be a JSON object (or the text of one)")
        draft = body.get("rules_yaml")
        if draft is not None and not isinstance(draft, str):
            raise BadRequest("rules_yaml must be the text of a rule file, or null")
        return project_id, event, draft if draft and draft.strip() else None

    def _explain(self, project_id: int | None, event: dict[str, Any], draft: str | None) -> Explanation:
        project: ProjectConfig | None = self._config.project(project_id) if project_id is not None else None
        names = list(self._config.rules_for(project))
        scrubber = self._twin(self._rules().for_project(project))
        if draft is not None:
            try:
                pack = parse_pack(draft, DRAFT_SOURCE, default_name="draft")
            except RuleError as exc:
                count = len(exc.problems)
                raise BadRequest(f"the draft rule file has {count} problem{'s' * (count != 1)}", exc.problems) from None
            scrub = self._config.scrub
            scrubber = Scrubber(
                [*scrubber.rules, *pack.rules],
                scrub.hash_key.encode(),
                scrub.timeout,
                identity_keys=scrub.identity_keys,
            )
            names.append(DRAFT_SOURCE)
        try:
            return explain_event(scrubber, event, project_id, names)
        except ScrubError as exc:
            raise BadRequest(f"the server would drop this event (scrubbing failed): {exc}") from None

    def _twin(self, server: Scrubber) -> Scrubber:
        """The playground's own scrubber with exactly a server scrubber's rules, made once per scrubber."""
        twin = self._twins.get(server)
        if twin is None:
            scrub = self._config.scrub
            twin = self._twins[server] = Scrubber(
                server.rules, scrub.hash_key.encode(), scrub.timeout, identity_keys=scrub.identity_keys
            )
        return twin


def _fixed(registry: ScrubberRegistry) -> RulesSource:
    """Rules loaded once."""
    return lambda: registry


PLAYGROUND = web.AppKey("playground", Playground)
_PAGE = web.AppKey("page", bytes)
_CSP = web.AppKey("csp", str)
_LOOPBACK_ONLY = web.AppKey("loopback_only", bool)


def create_admin_app(config: Config, rules: RulesSource | None = None) -> web.Application:
    """The admin application: the playground page at `/` and its API under `/api/`; see `Playground` for `rules`."""
    app = web.Application(middlewares=[_guard], client_max_size=_MAX_BODY)
    page = resources.files(__package__).joinpath("playground.html").read_text(encoding="utf-8")
    app[PLAYGROUND] = Playground(config, rules)
    app[_PAGE] = page.encode()
    app[_CSP] = _policy(page)
    app[_LOOPBACK_ONLY] = config.admin.host in _LOOPBACK_NAMES
    app.router.add_get("/", _handle_page, name="playground")
    app.router.add_get("/api/projects", _handle_projects, name="projects")
    app.router.add_post("/api/explain", _handle_explain, name="explain")
    return app


async def start_admin(config: Config, rules: RulesSource | None = None) -> web.AppRunner:
    """Serve the admin app on `admin.host:admin.port`; the caller cleans the runner up."""
    app = create_admin_app(config, rules)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.admin.host, config.admin.port, reuse_address=True).start()
    except BaseException:
        await runner.cleanup()
        raise
    addresses = [f"{a[0]}:{a[1]}" for a in runner.addresses]
    log_event(logger, logging.INFO, "admin listening", addresses=addresses, playground=_page_url(runner))
    if config.admin.host not in _LOOPBACK_NAMES:
        log_event(logger, logging.WARNING, "admin listener reachable from other machines; it has no authentication")
    return runner


def _page_url(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def _policy(page: str) -> str:
    """A CSP allowing exactly the page's own inline script and style: nothing from anywhere else."""

    def hashes(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", page, re.DOTALL)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in found)

    return (
        f"default-src 'none'; script-src {hashes('script')}; style-src {hashes('style')}; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, content_type="application/json", headers={"Cache-Control": "no-store"}
    )


@web.middleware
async def _guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Loopback listeners answer only loopback host names (no DNS rebinding); errors are JSON."""
    try:
        hostname = request.url.host
    except ValueError:  # a Host header yarl can't parse
        hostname = None
    if request.app[_LOOPBACK_ONLY] and hostname not in _LOOPBACK_NAMES:
        return _json({"detail": "the admin listener only answers requests for localhost"}, 403)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _json({"detail": exc.reason}, exc.status)
    except Exception as exc:  # one broken request must not take the listener down
        log_event(logger, logging.ERROR, "admin request failed", path=request.path, error=type(exc).__name__)
        return _json({"detail": f"internal error ({type(exc).__name__}); see the relay's log"}, 500)


async def _handle_page(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[_PAGE],
        content_type="text/html",
        charset="utf-8",
        headers={
            "Content-Security-Policy": request.app[_CSP],
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


async def _handle_projects(request: web.Request) -> web.Response:
    return _json(request.app[PLAYGROUND].projects())


async def _handle_explain(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        return _json({"detail": "send the request as JSON (Content-Type: application/json)"}, 415)
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _json({"detail": f"the request body is not valid JSON: {exc.msg} (line {exc.lineno})"}, 400)
    try:
        explanation = await request.app[PLAYGROUND].explain(body)
    except BadRequest as exc:
        data: dict[str, Any] = {"detail": exc.detail}
        if exc.problems is not None:
            data["problems"] = exc.problems
        return _json(data, 400)
    return _json(explanation.as_json())
