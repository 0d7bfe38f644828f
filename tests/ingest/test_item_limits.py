"""Items per envelope are capped while parsing (limits.max_envelope_items), and client-report entries per list."""

from __future__ import annotations

import gzip
import time

import orjson

from relay.envelope.model import parse_envelope
from relay.errors import TooManyItems
from relay.scrub.client_report import MAX_ENTRIES

from ..conftest import RelayFactory
from ..support import PROJECT, FakeUpstream, auth_header, envelope_bytes

URL = f"/api/{PROJECT}/envelope/"
TINY = b'{"type":"client_report"}\n{}\n'


async def test_a_flood_of_tiny_items_is_413_before_parsing(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """400,000 tiny items in an 18 KB gzip body: 413 with a detail, at once, and the relay still serves."""
    client = await make_relay()
    body = gzip.compress(b"{}\n" + TINY * 400_000)
    assert len(body) < 64 * 1024
    started = time.perf_counter()
    resp = await client.post(URL, data=body, headers={**auth_header(), "Content-Encoding": "gzip"})
    elapsed = time.perf_counter() - started
    assert resp.status == 413
    assert "limits.max_envelope_items" in (await resp.json())["detail"]
    assert elapsed < 5.0  # (unbounded, it took 22 s: here it is what decompressing 10 MB takes)
    health = await client.get("/healthz")
    assert health.status == 200
    ok = await client.post(URL, data=envelope_bytes({}, ({"type": "event"}, b'{"message":"m"}')), headers=auth_header())
    assert ok.status == 200
    await upstream.wait_for(1)


async def test_the_item_limit_is_configurable(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    client = await make_relay("limits: {max_envelope_items: 3}")
    three = envelope_bytes({}, *[({"type": "event"}, b'{"message":"m"}')] * 1, *[({"type": "attachment"}, b"a")] * 2)
    four = envelope_bytes({}, *[({"type": "attachment"}, b"a")] * 4)
    assert (await client.post(URL, data=three, headers=auth_header())).status == 200
    resp = await client.post(URL, data=four, headers=auth_header())
    assert resp.status == 413 and "more than 3 items" in (await resp.json())["detail"]


def test_parsing_stops_at_the_first_item_past_the_limit() -> None:
    """No Item exists past the limit: parsing a huge flood costs what parsing the limit does."""
    body = b"{}\n" + TINY * 200_000
    started = time.perf_counter()
    try:
        parse_envelope(body, 1000)
    except TooManyItems as exc:
        assert "more than 1000 items" in str(exc)
    else:
        raise AssertionError("no TooManyItems")
    assert time.perf_counter() - started < 1.0
    assert len(parse_envelope(b"{}\n" + TINY * 1000, 1000).items) == 1000


async def test_client_report_entries_are_capped(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A client report's lists keep at most MAX_ENTRIES entries; the rest is dropped as schema redactions (in the
    scrubbing child too: the report is past the size handed to it)."""
    client = await make_relay(rules="[secrets, pii]")
    entries = [{"reason": "queue_overflow", "category": "error", "quantity": 1}] * (MAX_ENTRIES * 20)
    report = orjson.dumps({"timestamp": 1700000000, "discarded_events": entries})
    event = ({"type": "event"}, b'{"message":"m"}')
    resp = await client.post(
        URL, data=envelope_bytes({}, event, ({"type": "client_report"}, report)), headers=auth_header()
    )
    assert resp.status == 200
    await upstream.wait_for(1)
    forwarded = [i for e in upstream.received for i in e.envelope.items if i.type == "client_report"]
    assert forwarded and all(len(orjson.loads(i.payload)["discarded_events"]) <= MAX_ENTRIES for i in forwarded)
