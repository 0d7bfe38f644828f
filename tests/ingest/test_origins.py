"""allowed_origins in Sentry's "Allowed Domains" format, as an operator copies it from Sentry's project settings."""

from __future__ import annotations

import pytest

from relay.ingest.cors import origin_allowed

from ..conftest import RelayFactory
from ..support import KEY, PROJECT, FakeUpstream, auth_header, envelope_bytes


@pytest.mark.parametrize(
    ("origin", "allowed", "expected"),
    [
        ("https://example.com", ["example.com"], True),  # a bare host: any scheme
        ("http://example.com:8080", ["example.com"], True),  # ... and any port
        ("https://app.example.com", ["*.example.com"], True),  # subdomains
        ("https://example.com", ["*.example.com"], True),  # and the domain itself, as Sentry has it
        ("https://badexample.com", ["*.example.com"], False),
        ("https://example.com.evil.net", ["example.com"], False),
        ("http://example.com", ["https://example.com"], False),  # a scheme given must match
        ("https://a.example.com", ["https://*.example.com"], True),
        ("http://localhost:3000", ["localhost:3000"], True),  # a port given must match
        ("http://localhost:3001", ["localhost:3000"], False),
        ("https://app-7.example.com", ["https://app-*.example.com"], True),  # globs over the origin still work
        ("https://EXAMPLE.com", ["Example.COM"], True),
        ("null", ["example.com"], False),  # sandboxed frames
        ("https://example.com:99999", ["example.com"], False),  # not a port
        ("https://any.where", ["*"], True),
    ],
)
def test_sentry_allowed_domains(origin: str, allowed: list[str], expected: bool) -> None:
    """Each form Sentry's Allowed Domains field takes matches the origins Sentry would let through."""
    assert origin_allowed(origin, allowed) is expected


async def test_copied_sentry_list_lets_browser_events_through(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A project with Sentry's list (bare host, wildcard subdomain) takes its sites' events and refuses others."""
    projects = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    allowed_origins: ["shop.example", "*.shop.example"]
"""
    client = await make_relay(projects=projects)
    url = f"/api/{PROJECT}/envelope/"
    body = envelope_bytes({}, ({"type": "event"}, b'{"message":"x"}'))
    for origin, status in (
        ("https://shop.example", 200),
        ("http://checkout.shop.example:8443", 200),
        ("https://shop.example.evil.net", 403),
    ):
        resp = await client.post(url, data=body, headers={**auth_header(), "Origin": origin})
        assert resp.status == status, origin
        assert "Access-Control-Allow-Origin" in resp.headers
    await upstream.wait_for(2)
    assert len(upstream.received) == 2
