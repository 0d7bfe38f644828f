"""Security and CSP reports; CORS; health, readiness and metrics; unknown paths."""

from __future__ import annotations

import asyncio
import re

import orjson
import pytest

from relay.ingest import RelayState

from ..conftest import RelayFactory, state_of
from ..support import (
    KEY,
    PROJECT,
    UPSTREAM_PROJECT,
    FakeUpstream,
    auth_header,
    envelope_bytes,
    outcome_totals,
    received_total,
)

EVENT_ID = "abcdef0123456789abcdef0123456789"
CSP_REPORT = {
    "csp-report": {
        "document-uri": "https://app.example.com/page",
        "violated-directive": "script-src",
        "blocked-uri": "https://evil.example.net/x.js",
    }
}
ORIGIN = "https://app.example.com"


def _event(event_id: str = EVENT_ID) -> bytes:
    return envelope_bytes({"event_id": event_id}, ({"type": "event"}, b'{"message":"x"}'))


async def _settled(state: RelayState, timeout: float = 10.0) -> None:
    """Wait until the relay's queue is empty, i.e. every forwarded entry has its outcome."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while state.spool.pending():
        if loop.time() > deadline:
            raise AssertionError(f"queue still holds {state.spool.pending()} envelopes")
        await asyncio.sleep(0.01)


# -- security / CSP ------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["security", "csp-report"])
async def test_csp_report_forwarded_as_raw_security(
    make_relay: RelayFactory, upstream: FakeUpstream, endpoint: str
) -> None:
    """A browser CSP report with ?sentry_key= is 200 and forwarded as a byte-identical raw_security item."""
    client = await make_relay()
    body = orjson.dumps(CSP_REPORT)
    url = f"/api/{PROJECT}/{endpoint}/?sentry_key={KEY}&sentry_release=1.2.3&sentry_environment=prod"
    resp = await client.post(url, data=body, headers={"Content-Type": "application/csp-report"})
    assert resp.status == 200
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert re.fullmatch(r"[0-9a-f]{32}", rec.envelope.event_id or "")
    item = rec.envelope.items[0]
    assert item.type == "raw_security"
    assert item.payload == body
    assert item.headers["sentry_release"] == "1.2.3"
    assert item.headers["sentry_environment"] == "prod"


async def test_security_with_auth_header(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """The security endpoint also takes X-Sentry-Auth, and trailing slash is optional."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/security", data=orjson.dumps(CSP_REPORT), headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    assert "sentry_release" not in upstream.received[0].envelope.items[0].headers


async def test_security_invalid_json_is_400(make_relay: RelayFactory) -> None:
    """A security report that is not JSON is 400 with a detail."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/security/?sentry_key={KEY}", data=b"<not json>")
    assert resp.status == 400
    assert "not valid JSON" in (await resp.json())["detail"]


async def test_security_without_key_is_401(make_relay: RelayFactory) -> None:
    """A security report without credentials is 401 with a detail."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/security/", data=orjson.dumps(CSP_REPORT))
    assert resp.status == 401
    assert "detail" in await resp.json()


async def test_csp_report_unknown_project_is_403(make_relay: RelayFactory) -> None:
    """A CSP report for an unconfigured project is 403."""
    client = await make_relay()
    resp = await client.post(f"/api/77/csp-report/?sentry_key={KEY}", data=orjson.dumps(CSP_REPORT))
    assert resp.status == 403
    assert "detail" in await resp.json()


async def test_security_origin_checked(make_relay: RelayFactory) -> None:
    """A security report from an origin the project does not allow is 403, like the envelope endpoint."""
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    allowed_origins: ["{ORIGIN}"]
"""
    client = await make_relay(projects=projects)
    resp = await client.post(
        f"/api/{PROJECT}/security/?sentry_key={KEY}",
        data=orjson.dumps(CSP_REPORT),
        headers={"Origin": "https://evil.example.net"},
    )
    assert resp.status == 403
    assert "origin" in (await resp.json())["detail"]


# -- CORS ----------------------------------------------------------------------


async def test_cors_headers_on_envelope(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """With an Origin, the answer allows that origin and exposes the rate-limit headers."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/envelope/", data=_event(), headers={**auth_header(), "Origin": ORIGIN})
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = [h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")]
    assert "x-sentry-rate-limits" in exposed
    assert "retry-after" in exposed
    assert "Origin" in resp.headers.get("Vary", "")
    await upstream.wait_for(1)


async def test_cors_headers_on_errors(make_relay: RelayFactory) -> None:
    """Error answers carry CORS headers too, so the browser SDK can read them."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/envelope/", data=_event(), headers={"Origin": ORIGIN})
    assert resp.status == 401
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "retry-after" in resp.headers["Access-Control-Expose-Headers"]
    assert "detail" in await resp.json()


async def test_allowed_origins_reject_others(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A project with allowed_origins refuses other origins with 403, accepts its own and no-Origin requests."""
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    allowed_origins: ["{ORIGIN}"]
"""
    client = await make_relay(projects=projects)
    url = f"/api/{PROJECT}/envelope/"
    resp = await client.post(url, data=_event(), headers={**auth_header(), "Origin": "https://evil.example.net"})
    assert resp.status == 403
    assert "https://evil.example.net" in (await resp.json())["detail"]
    resp = await client.post(url, data=_event(), headers={**auth_header(), "Origin": "https://APP.example.com"})
    assert resp.status == 200
    resp = await client.post(url, data=_event(), headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(2)
    assert len(upstream.received) == 2


async def test_allowed_origins_on_store(make_relay: RelayFactory) -> None:
    """The store endpoint enforces allowed_origins as well."""
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    allowed_origins: ["https://*.example.com"]
"""
    client = await make_relay(projects=projects)
    resp = await client.post(
        f"/api/{PROJECT}/store/", data=b'{"message":"x"}', headers={**auth_header(), "Origin": "https://example.org"}
    )
    assert resp.status == 403
    assert "not allowed" in (await resp.json())["detail"]


async def test_allowed_origin_glob(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Glob patterns in allowed_origins match subdomains."""
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    allowed_origins: ["https://*.example.com"]
"""
    client = await make_relay(projects=projects)
    resp = await client.post(
        f"/api/{PROJECT}/envelope/", data=_event(), headers={**auth_header(), "Origin": "https://shop.example.com"}
    )
    assert resp.status == 200
    await upstream.wait_for(1)


@pytest.mark.parametrize("endpoint", ["envelope", "store", "security", "minidump"])
async def test_preflight(make_relay: RelayFactory, endpoint: str) -> None:
    """OPTIONS preflight is 200 with allowed methods and the headers SDKs send."""
    client = await make_relay()
    resp = await client.options(
        f"/api/{PROJECT}/{endpoint}/",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-sentry-auth",
        },
    )
    assert resp.status == 200
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    allowed = [h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")]
    for header in ("x-sentry-auth", "content-type", "content-encoding", "sentry-trace", "baggage"):
        assert header in allowed
    assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN


# -- health, readiness, metrics, unknown paths --------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/api/relay/healthcheck/live/"])
async def test_liveness(make_relay: RelayFactory, path: str) -> None:
    """Liveness endpoints answer 200 with is_healthy true."""
    client = await make_relay()
    resp = await client.get(path)
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "is_healthy": True}


@pytest.mark.parametrize("path", ["/readyz", "/api/relay/healthcheck/ready/"])
async def test_readiness(make_relay: RelayFactory, path: str) -> None:
    """Readiness endpoints answer 200 once the relay has started, 503 when it is not ready."""
    client = await make_relay()
    resp = await client.get(path)
    assert resp.status == 200
    assert await resp.json() == {"status": "ready", "is_healthy": True}
    state_of(client).ready = False
    resp = await client.get(path)
    assert resp.status == 503
    assert await resp.json() == {"status": "not_ready", "is_healthy": False}
    state_of(client).ready = True


async def test_metrics_exposition(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """/metrics is Prometheus text with request, latency, queue, forward and outcome metrics."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/envelope/", data=_event(), headers=auth_header())
    assert resp.status == 200
    await upstream.wait_for(1)
    await _settled(state_of(client))
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    text = await resp.text()
    for name in (
        "relay_requests_total",
        "relay_request_duration_seconds",
        "relay_queue_envelopes",
        "relay_forward_attempts_total",
        "relay_outcomes_total",
    ):
        assert re.search(rf"^{name}", text, re.M), name
    assert 'relay_requests_total{endpoint="envelope",status="200"} 1.0' in text
    assert 'relay_forward_attempts_total{status="200"} 1.0' in text
    assert 'relay_outcomes_total{category="error",outcome="forwarded",reason="none"} 1.0' in text
    assert "relay_queue_envelopes 0.0" in text


async def test_received_items_equal_outcomes(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """After a mix of accepted and refused requests, items received equals the sum of all outcomes."""
    client = await make_relay("limits: {max_attachment_size: 1KiB}")
    url = f"/api/{PROJECT}/envelope/"
    ok = envelope_bytes(
        {"event_id": EVENT_ID},
        ({"type": "event"}, b"{}"),
        ({"type": "attachment"}, b"a"),
        ({"type": "session"}, b'{"sid":"s"}'),
    )
    too_big = envelope_bytes({}, ({"type": "event"}, b"{}"), ({"type": "attachment"}, b"a" * 2048))
    bad_json = envelope_bytes({}, ({"type": "transaction"}, b"{nope"), ({"type": "client_report"}, b"{}"))
    answers = []
    for body in (ok, too_big, bad_json, ok, b"garbage"):
        resp = await client.post(url, data=body, headers=auth_header())
        answers.append(resp.status)
    resp = await client.post(f"/api/{PROJECT}/store/", data=b'{"message":"legacy"}', headers=auth_header())
    answers.append(resp.status)
    assert answers == [200, 413, 400, 200, 400, 200]
    await upstream.wait_for(3)
    state = state_of(client)
    await _settled(state)
    totals = outcome_totals(state)
    assert received_total(state) == 3 + 2 + 2 + 3 + 1
    assert sum(totals.values()) == received_total(state)
    assert totals[("forwarded", "none", "error")] == 3
    assert totals[("invalid", "too_large", "attachment")] == 1
    assert totals[("invalid", "invalid_json", "transaction")] == 1


async def test_unknown_path_is_json_404(make_relay: RelayFactory) -> None:
    """Unknown paths answer 404 with a JSON detail naming the path."""
    client = await make_relay()
    for path in ("/nope", "/api/", "/api/42/", "/api/42/envelope/extra/"):
        resp = await client.post(path, data=b"{}")
        assert resp.status == 404
        assert resp.content_type == "application/json"
        assert path in (await resp.json())["detail"]
    resp = await client.get("/definitely/not/here")
    assert resp.status == 404
    assert "detail" in await resp.json()


@pytest.mark.parametrize("path", ["/api/42/unknown/", "/api/42/events"])
async def test_unknown_api_endpoint_post_is_404(make_relay: RelayFactory, path: str) -> None:
    """POST to an /api/<id>/<name>/ path that is no ingest endpoint is 404, not 405."""
    client = await make_relay()
    resp = await client.post(path, data=b"{}")
    assert resp.status == 404
    assert path in (await resp.json())["detail"]


async def test_wrong_method_is_json_405(make_relay: RelayFactory) -> None:
    """GET on an ingest endpoint is 405 with a JSON detail and an Allow header."""
    client = await make_relay()
    resp = await client.get(f"/api/{PROJECT}/envelope/")
    assert resp.status == 405
    assert "POST" in resp.headers["Allow"]
    assert "detail" in await resp.json()


async def test_requests_counted_by_endpoint(make_relay: RelayFactory) -> None:
    """relay_requests_total counts requests by route name and status, unmatched ones included."""
    client = await make_relay()
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/nope")).status == 404
    assert (await client.post(f"/api/{PROJECT}/envelope/", data=_event())).status == 401
    text = await (await client.get("/metrics")).text()
    assert 'relay_requests_total{endpoint="healthz",status="200"} 1.0' in text
    assert 'relay_requests_total{endpoint="unmatched",status="404"} 1.0' in text
    assert 'relay_requests_total{endpoint="envelope",status="401"} 1.0' in text
