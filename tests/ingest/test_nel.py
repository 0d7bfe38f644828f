"""Network Error Logging (`/api/<project>/nel/`): a browser's list of reports, one `nel` item each."""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.errors import HttpError
from relay.ingest.nel import nel_items

from ..conftest import RelayFactory
from ..support import KEY, PROJECT, UPSTREAM_PROJECT, FakeUpstream

URL = f"/api/{PROJECT}/nel/?sentry_key={KEY}"
REPORTS_JSON = {"Content-Type": "application/reports+json"}


def _report(url: str = "https://example.com/index.html", error: str = "http.error") -> dict[str, object]:
    """A NEL report as Chrome's Reporting API sends it."""
    return {
        "age": 1200000,
        "type": "network-error",
        "url": url,
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
        "body": {
            "elapsed_time": 37,
            "method": "GET",
            "phase": "application",
            "protocol": "http/1.1",
            "referrer": "https://example.com/nel/",
            "sampling_fraction": 1.0,
            "server_ip": "123.123.123.123",
            "status_code": 500,
            "type": error,
        },
    }


async def test_reports_become_nel_items(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Each report of the list is one `nel` item with the report as JSON; the answer is 200 with no body."""
    client = await make_relay()
    reports = [_report(), _report("https://example.com/api", "tcp.reset")]
    resp = await client.post(URL, data=orjson.dumps(reports), headers=REPORTS_JSON)
    assert resp.status == 200
    assert await resp.read() == b""
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert re.fullmatch(r"[0-9a-f]{32}", rec.envelope.event_id or "")
    assert [item.type for item in rec.envelope.items] == ["nel", "nel"]
    assert [item.headers["content_type"] for item in rec.envelope.items] == ["application/json"] * 2
    assert [item.json() for item in rec.envelope.items] == reports


async def test_application_json_accepted(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`application/json` is accepted as well as `application/reports+json`."""
    client = await make_relay()
    resp = await client.post(URL, data=orjson.dumps([_report()]), headers={"Content-Type": "application/json"})
    assert resp.status == 200
    await upstream.wait_for(1)


async def test_reports_are_scrubbed(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """The reports go through the scrubber like every other item: a secret in a URL doesn't reach the upstream."""
    client = await make_relay(rules="[secrets, pii]")
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    resp = await client.post(
        URL, data=orjson.dumps([_report(f"https://example.com/cb?token={token}")]), headers=REPORTS_JSON
    )
    assert resp.status == 200
    await upstream.wait_for(1)
    payload = upstream.received[0].envelope.items[0].payload
    assert token.encode() not in payload


@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        (b"[]", "text/plain", 415, "application/reports+json"),
        (b"{nope", "application/json", 400, "not valid JSON"),
        (b'{"type": "network-error"}', "application/json", 400, "JSON list"),
        (b"[1]", "application/json", 400, "report 0"),
    ],
    ids=["content-type", "syntax", "not-a-list", "not-an-object"],
)
async def test_bad_reports(
    make_relay: RelayFactory, upstream: FakeUpstream, body: bytes, content_type: str, status: int, detail: str
) -> None:
    """A body that is not a JSON list of report objects is 400; another content type is 415."""
    client = await make_relay()
    resp = await client.post(URL, data=body, headers={"Content-Type": content_type})
    assert resp.status == status
    assert detail in (await resp.json())["detail"]
    assert not upstream.received


async def test_without_key_is_401(make_relay: RelayFactory) -> None:
    """NEL reports without sentry_key are 401."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/nel/", data=b"[]", headers=REPORTS_JSON)
    assert resp.status == 401
    assert "detail" in await resp.json()


async def test_deeply_nested_report_is_400(make_relay: RelayFactory) -> None:
    """A report nested deeper than the relay writes JSON is 400, not an internal error."""
    client = await make_relay()
    body = b'[{"a":' + b"[" * 300 + b"]" * 300 + b"}]"
    resp = await client.post(URL, data=body, headers=REPORTS_JSON)
    assert resp.status == 400
    assert "nested too deeply" in (await resp.json())["detail"]


async def test_too_many_reports_is_413(make_relay: RelayFactory) -> None:
    """More reports than limits.max_envelope_items is 413."""
    client = await make_relay("limits: {max_envelope_items: 3}")
    resp = await client.post(URL, data=orjson.dumps([_report()] * 4), headers=REPORTS_JSON)
    assert resp.status == 413
    assert "max_envelope_items" in (await resp.json())["detail"]


async def test_preflight(make_relay: RelayFactory) -> None:
    """The Reporting API's preflight is answered with the allowed methods and CORS headers."""
    client = await make_relay()
    resp = await client.options(
        f"/api/{PROJECT}/nel/", headers={"Origin": "https://example.com", "Access-Control-Request-Method": "POST"}
    )
    assert resp.status == 200
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["Access-Control-Allow-Origin"] == "https://example.com"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@given(json_values | st.lists(st.dictionaries(st.text(max_size=10), json_values, max_size=4), max_size=6))
def test_nel_items_round_trip(value: object) -> None:
    """Any JSON is a 400 or 413, or one `nel` item per report whose payload is that report."""
    reports = value
    try:
        items = nel_items(orjson.dumps(reports), 5)
    except HttpError as exc:
        assert exc.status in (400, 413)
        return
    assert isinstance(reports, list)
    assert [item.type for item in items] == ["nel"] * len(reports)
    assert [item.json() for item in items] == reports
