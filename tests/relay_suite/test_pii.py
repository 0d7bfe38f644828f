"""Port of getsentry/relay `tests/integration/test_pii.py` as black-box tests of this relay.

Relay source read at commit 185374f8b49715f490fd62c3a040f65d75c1e1a6.

Relay's snapshot also holds what normalization and GeoIP add (`user.geo`, `sentry_user`, `key_id`, the tags Relay
derives for spans); those are Sentry's, so only the advanced rule's effect on what the SDK sent is compared.
"""

from __future__ import annotations

from pathlib import Path

from ..support import FakeUpstream
from .conftest import RelayFactory
from .support import event_of, send_event

MASK_RULES = r"""
pack: span_tags
description: Relay's advanced rule "@anything:mask" on two span sentry_tags.
rules:
  - id: span_tags.anything_mask
    description: Mask the whole value.
    pattern: '[\s\S]+'
    selectors: ["$span.sentry_tags.'user.geo.country_code'", "$span.sentry_tags.'user.geo.subregion'"]
    action: mask
"""


async def test_snapshot_scrub_span_sentry_tags_advanced_rules(
    relay_factory: RelayFactory, upstream: FakeUpstream, tmp_path: Path
) -> None:
    """An advanced mask rule on `$span.sentry_tags.'user.geo.*'` masks those tags and records it in `_meta`."""
    rules = tmp_path / "span_tags.yml"
    rules.write_text(MASK_RULES)
    client = await relay_factory(rules=f"[{rules}]")
    span = {
        "timestamp": 1746007551,
        "start_timestamp": 1746007545,
        "span_id": "aaaaaaaa00000000",
        "trace_id": "aaaaaaaaaaaaaaaaaaaa000000000000",
        "sentry_tags": {"user.geo.country_code": "ATdasdsa", "user.geo.subregion": "12"},
    }
    assert (await send_event(client, {"user": {"ip_address": "2.125.160.216"}, "spans": [span]})).status == 200
    await upstream.wait_for(1)
    event = event_of(upstream.received[0])
    assert event["user"]["ip_address"] == "2.125.160.216"
    assert event["spans"][0]["sentry_tags"] == {"user.geo.country_code": "********", "user.geo.subregion": "**"}
    meta = event["_meta"]["spans"]["0"]["sentry_tags"]
    assert meta["user.geo.country_code"][""]["len"] == 8
    assert meta["user.geo.subregion"][""]["len"] == 2
    assert meta["user.geo.subregion"][""]["rem"][0][1:] == ["m", 0, 2]
