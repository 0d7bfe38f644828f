"""Port of getsentry/relay `tests/integration/test_nel.py` as black-box tests of this relay.

Relay source read at commit 6f1c6a7e34fcf2878fe2845b37bf88f55816ea71.
"""

from __future__ import annotations

import orjson

from ..support import KEY, PROJECT, FakeUpstream
from .conftest import RelayFactory

REPORT = {
    "age": 1200000,
    "body": {
        "elapsed_time": 37,
        "method": "GET",
        "phase": "application",
        "protocol": "http/1.1",
        "referrer": "https://example.com/nel/",
        "sampling_fraction": 1,
        "server_ip": "123.123.123.123",
        "status_code": 500,
        "type": "http.error",
    },
    "type": "network-error",
    "url": "https://example.com/index.html",
    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/111.0.0.0 Safari/537.36",
}


async def test_nel_converted_to_logs(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """A NEL report is answered 200 and reaches the upstream as one item holding what Relay's log keeps."""
    # Relay's external relay turns the report into a `log` item; here the upstream Relay does that with `nel` items.
    client = await relay_factory()
    resp = await client.post(
        f"/api/{PROJECT}/nel/?sentry_key={KEY}",
        data=orjson.dumps([REPORT]),
        headers={"Content-Type": "application/reports+json"},
    )
    assert resp.status == 200
    await upstream.wait_for(1)
    (item,) = upstream.received[0].envelope.items
    assert item.type in ("nel", "log")
    text = item.payload.decode()
    for value in ("https://example.com/index.html", "https://example.com/nel/", "123.123.123.123", "http.error"):
        assert value in text
