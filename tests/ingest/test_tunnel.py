"""The tunnel (`tunnel: {path: ...}`): raw envelopes routed by the DSN in their header, never by its host."""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.request
from typing import Any

import orjson
import pytest
import sentry_sdk
from aiohttp import web
from sentry_sdk.envelope import Envelope as SdkEnvelope
from sentry_sdk.transport import Transport

from relay.config import parse_config
from relay.errors import ConfigError

from ..conftest import RelayFactory, state_of
from ..support import (
    KEY,
    PROJECT,
    UPSTREAM_KEY,
    UPSTREAM_PROJECT,
    FakeUpstream,
    background_relay,
    config_text,
    envelope_bytes,
)

TUNNEL = "tunnel: {path: /monitoring}"
PATH = "/monitoring"
ORIGIN = "https://app.example.com"
BROWSER = {"Content-Type": "text/plain;charset=UTF-8", "Origin": ORIGIN}  # what a browser's fetch sends
EVENT_ID = "9ec79c33ec9942ab8353589fcb2e04dc"
SDK_INFO = {"name": "sentry.javascript.browser", "version": "9.1.0"}


def _browser_envelope(dsn: str | None, *items: tuple[dict[str, Any], bytes]) -> bytes:
    """An envelope as the browser SDK writes it with `tunnel` set: the DSN in the header."""
    headers: dict[str, Any] = {"event_id": EVENT_ID, "sent_at": "2025-01-01T00:00:00.000Z", "sdk": SDK_INFO}
    if dsn is not None:
        headers["dsn"] = dsn
    return envelope_bytes(headers, *(items or (({"type": "event"}, b'{"message":"boom"}'),)))


def _cors(resp: Any) -> None:
    """The answer lets the page read it."""
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "x-sentry-rate-limits" in resp.headers["Access-Control-Expose-Headers"]


async def _settled(client: Any) -> None:
    """Wait until the relay's queue is empty (every forward attempt made)."""
    state = state_of(client)
    for _ in range(500):
        if not state.spool.pending():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("queue not drained")


async def test_envelope_routed_by_its_dsn(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A browser envelope is answered as on the envelope endpoint, with CORS, and forwarded with the upstream's dsn."""
    client = await make_relay(TUNNEL)
    body = _browser_envelope(f"https://{KEY}@o1.ingest.sentry.io/{PROJECT}")
    resp = await client.post(PATH, data=body, headers=BROWSER)
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    _cors(resp)
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert f"sentry_key={UPSTREAM_KEY}" in rec.headers["X-Sentry-Auth"]
    assert rec.envelope.headers["dsn"] == f"{upstream.url.replace('://', f'://{UPSTREAM_KEY}@')}/{UPSTREAM_PROJECT}"
    assert [(i.type, i.json()) for i in rec.envelope.items] == [("event", {"message": "boom"})]


async def test_dsn_host_is_never_used(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Whatever host the DSN names, the envelope goes to the configured upstream and nowhere else."""
    client = await make_relay(TUNNEL)
    body = _browser_envelope(f"http://{KEY}@internal.corp.example:8443/some/path/{PROJECT}")
    resp = await client.post(PATH, data=body, headers=BROWSER)
    assert resp.status == 200
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert "internal.corp.example" not in rec.envelope.headers["dsn"]


@pytest.mark.parametrize("known_project", [True, False], ids=["configured-project", "unknown-project"])
async def test_ssrf_dsn_never_reaches_its_host(
    make_relay: RelayFactory, upstream: FakeUpstream, aiohttp_server: Any, known_project: bool
) -> None:
    """A DSN pointing at another local port (a canary server) never makes the relay call that port."""
    hits: list[str] = []

    async def canary(request: web.Request) -> web.Response:
        """Record whatever reaches the port the DSN names."""
        hits.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", canary)
    server = await aiohttp_server(app)
    project = PROJECT if known_project else 77
    client = await make_relay(TUNNEL)
    body = _browser_envelope(f"http://{KEY}@127.0.0.1:{server.port}/{project}")
    resp = await client.post(PATH, data=body, headers=BROWSER)
    assert resp.status == (200 if known_project else 403)
    if known_project:
        await upstream.wait_for(1)
    await _settled(client)
    await asyncio.sleep(0.1)
    assert hits == []


@pytest.mark.parametrize(
    "dsn",
    [f"https://{KEY}@o1.ingest.sentry.io/77", f"https://{'f' * 32}@o1.ingest.sentry.io/{PROJECT}"],
    ids=["unknown-project", "unknown-key"],
)
async def test_unknown_project_or_key_is_403(make_relay: RelayFactory, upstream: FakeUpstream, dsn: str) -> None:
    """A DSN naming a project or key not configured is 403 with CORS headers, even with unknown_projects: forward."""
    client = await make_relay(f"{TUNNEL}\nunknown_projects: forward")
    resp = await client.post(PATH, data=_browser_envelope(dsn), headers=BROWSER)
    assert resp.status == 403
    detail = (await resp.json())["detail"]
    assert "does not accept" in detail
    assert KEY not in detail and "f" * 32 not in detail
    _cors(resp)
    await _settled(client)
    assert not upstream.received


async def test_client_reports_without_dsn_are_200(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Client reports without a dsn (older browser SDKs) are answered 200 `{}` and not forwarded."""
    client = await make_relay(TUNNEL)
    report = orjson.dumps({"timestamp": 1700000000, "discarded_events": [{"reason": "x", "category": "error"}]})
    body = envelope_bytes({}, ({"type": "client_report"}, report))
    resp = await client.post(PATH, data=body, headers=BROWSER)
    assert resp.status == 200
    assert await resp.json() == {}
    _cors(resp)
    await _settled(client)
    assert not upstream.received


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (_browser_envelope(None), "no dsn"),
        (_browser_envelope("not a dsn"), "not a DSN"),
        (_browser_envelope(f"https://{KEY}@o1.ingest.sentry.io/abc"), "not a DSN"),
        (b"garbage", "invalid envelope"),
    ],
    ids=["event-without-dsn", "junk-dsn", "non-numeric-project", "not-an-envelope"],
)
async def test_bad_tunnel_envelope_is_400(
    make_relay: RelayFactory, upstream: FakeUpstream, body: bytes, detail: str
) -> None:
    """An event without a dsn, a dsn that doesn't parse, or a body that is no envelope is 400 with CORS headers."""
    client = await make_relay(TUNNEL)
    resp = await client.post(PATH, data=body, headers=BROWSER)
    assert resp.status == 400
    assert detail in (await resp.json())["detail"]
    _cors(resp)
    assert not upstream.received


async def test_origin_checked_against_the_project(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """The project's allowed_origins apply to the tunnel too."""
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    allowed_origins: ["{ORIGIN}"]
"""
    client = await make_relay(TUNNEL, projects=projects)
    body = _browser_envelope(f"https://{KEY}@o1.ingest.sentry.io/{PROJECT}")
    resp = await client.post(PATH, data=body, headers={**BROWSER, "Origin": "https://evil.example.net"})
    assert resp.status == 403
    assert "origin" in (await resp.json())["detail"]
    resp = await client.post(PATH, data=body, headers=BROWSER)
    assert resp.status == 200
    await upstream.wait_for(1)


async def test_preflight(make_relay: RelayFactory) -> None:
    """OPTIONS on the tunnel (a tunnel on another origin) is a CORS preflight."""
    client = await make_relay(TUNNEL)
    resp = await client.options(
        PATH,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert resp.status == 200
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "content-type" in resp.headers["Access-Control-Allow-Headers"]
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_off_without_config(make_relay: RelayFactory) -> None:
    """Without `tunnel`, the path is not served."""
    client = await make_relay()
    resp = await client.post(PATH, data=_browser_envelope(f"https://{KEY}@o1.ingest.sentry.io/{PROJECT}"))
    assert resp.status == 404


class _TunnelTransport(Transport):
    """What the browser SDK's `tunnel` option does, for sentry-python: the DSN into the envelope header, the
    envelope posted as text/plain to the tunnel URL."""

    def __init__(self, url: str, dsn: str) -> None:
        super().__init__()
        self.url = url
        self.dsn = dsn
        self.statuses: list[int] = []
        self.lock = threading.Lock()

    def capture_envelope(self, envelope: SdkEnvelope) -> None:
        """Post the envelope to the tunnel, its DSN in the header."""
        envelope.headers["dsn"] = self.dsn
        request = urllib.request.Request(
            self.url, data=envelope.serialize(), headers={"Content-Type": "text/plain;charset=UTF-8"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        with self.lock:
            self.statuses.append(status)


def test_python_sdk_through_the_tunnel() -> None:
    """sentry-python's envelopes, sent through the tunnel, reach the upstream with the event intact."""
    with background_relay(TUNNEL) as relay:
        transport = _TunnelTransport(f"http://127.0.0.1:{relay.port}{PATH}", relay.dsn)
        sentry_sdk.init(dsn=relay.dsn, transport=transport, default_integrations=False, send_client_reports=False)
        try:
            event_id = sentry_sdk.capture_message("through the tunnel")
        finally:
            sentry_sdk.get_client().close(timeout=5)
            sentry_sdk.get_global_scope().set_client(None)
        relay.wait_for(1)
        assert transport.statuses == [200]
        envelope = relay.upstream.received[0].envelope
        assert envelope.event_id == event_id
        assert [item.type for item in envelope.items] == ["event"]
        assert envelope.items[0].json()["message"] == "through the tunnel"


@pytest.mark.parametrize(
    ("tunnel", "problem"),
    [
        ("{path: tunnel}", "tunnel.path: expected a path like /tunnel"),
        ("{path: /api/tunnel}", "tunnel.path: must not be under /api/"),
        ("{path: /API}", "tunnel.path: must not be under /api/"),
        ("{path: /healthz}", "tunnel.path: must not be one of the relay's own paths"),
        ("{path: '/a//b'}", "tunnel.path: expected a path like /tunnel"),
        ("{path: '/t?x=1'}", "tunnel.path: expected a path like /tunnel"),
        ("{}", "tunnel.path: is required"),
        ("{path: /t, host: x}", "tunnel.host: unknown key; valid keys are: path"),
        ("/tunnel", "tunnel: expected a mapping"),
    ],
)
def test_config_validation(tunnel: str, problem: str) -> None:
    """`tunnel.path` must be a plain absolute path clear of /api/ and the health paths; problems name file and key."""
    with pytest.raises(ConfigError) as info:
        parse_config(config_text("http://127.0.0.1:1", f"tunnel: {tunnel}"), "relay.yml", {})
    assert any(p.startswith(f"relay.yml: {problem}") for p in info.value.problems), info.value.problems


def test_config_parsed() -> None:
    """A valid tunnel section is read; without it the tunnel is off."""
    config = parse_config(config_text("http://127.0.0.1:1", TUNNEL), "relay.yml", {})
    assert config.tunnel is not None and config.tunnel.path == PATH
    assert parse_config(config_text("http://127.0.0.1:1"), "relay.yml", {}).tunnel is None
