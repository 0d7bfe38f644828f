"""Port of getsentry/relay `tests/integration/test_attachments.py` as black-box tests of this relay.

Relay source read at commit 391cacf71735664a6359756952534991bfd1d62a.
"""

from __future__ import annotations

import pytest
from aiohttp import FormData

from ..conftest import state_of
from ..support import PROJECT, FakeUpstream, auth_header, outcome_totals
from .conftest import RelayFactory
from .support import CHROME, Client, items, projects_yaml, settle

EVENT_ID = "515539018c9b4260a6f999572f1661ee"


async def send_attachments(client: Client, event_id: str, files: list[tuple[str, str, bytes]]) -> int:
    """Relay's `send_attachments`: a multipart upload to `/api/<id>/events/<event_id>/attachments/`."""
    url = f"/api/{PROJECT}/events/{event_id}/attachments/"
    headers = {"User-Agent": CHROME, **auth_header()}
    if not files:
        return int((await client.post(url, headers=headers)).status)
    form = FormData()
    for name, filename, content in files:
        form.add_field(name, content, filename=filename, content_type="application/octet-stream")
    return int((await client.post(url, data=form, headers=headers)).status)


def not_forwarded(client: Client) -> dict[tuple[str, str, str], float]:
    """Outcomes other than `forwarded` (Relay: what reached the outcomes topic)."""
    return {k: v for k, v in outcome_totals(state_of(client)).items() if k[0] != "forwarded" and v}


async def test_attachments_400(relay_factory: RelayFactory) -> None:
    """An upload for a malformed event id (`123abc`) is 400."""
    client = await relay_factory()
    assert await send_attachments(client, "123abc", []) == 400


async def test_attachments_with_processing(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """Two uploaded files arrive as `event.attachment` items with their names, content type and bytes."""
    client = await relay_factory()
    files = [("att_1", "foo.txt", b"heavens no"), ("att_2", "bar.txt", b"hell yeah")]
    assert await send_attachments(client, EVENT_ID, files) < 300
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.envelope.event_id == EVENT_ID
    found = [
        (i.headers.get("filename"), i.headers.get("attachment_type", "event.attachment"), i.headers.get("content_type"))
        for i in items(rec, "attachment")
    ]
    assert found == [
        ("foo.txt", "event.attachment", "application/octet-stream"),
        ("bar.txt", "event.attachment", "application/octet-stream"),
    ]
    assert [i.payload for i in items(rec, "attachment")] == [b"heavens no", b"hell yeah"]
    await settle(upstream, 1)
    assert not_forwarded(client) == {}


async def test_empty_attachments_with_processing(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """An empty uploaded file arrives as an empty `event.attachment` named foo.txt."""
    client = await relay_factory()
    assert await send_attachments(client, EVENT_ID, [("att_1", "foo.txt", b"")]) < 300
    await upstream.wait_for(1)
    (attachment,) = items(upstream.received[0], "attachment")
    assert attachment.headers.get("filename") == "foo.txt"
    assert attachment.headers.get("attachment_type", "event.attachment") == "event.attachment"
    assert attachment.payload == b""


@pytest.mark.parametrize("rate_limits", [[], ["attachment"]])
async def test_attachments_ratelimit(
    relay_factory: RelayFactory, upstream: FakeUpstream, rate_limits: list[str]
) -> None:
    """With a quota of 0 (all categories, or attachments), a repeated upload is answered 429 and nothing is sent."""
    categories = f"categories: [{', '.join(rate_limits)}], " if rate_limits else ""
    quota = f"{{id: static, {categories}limit: 0, window: 1h, reason_code: static_disabled_quota}}"
    client = await relay_factory(projects=projects_yaml(upstream.url, f"quotas: [{quota}]"))
    await send_attachments(client, EVENT_ID, [("att_1", "foo.txt", b"")])  # Relay: 200, then dropped
    assert await send_attachments(client, EVENT_ID, [("att_1", "foo.txt", b"")]) == 429
    await settle(upstream, 0)


async def test_attachments_quotas(relay_factory: RelayFactory, upstream: FakeUpstream) -> None:
    """An attachment byte quota of five bodies: five uploads pass, then uploads are answered 429."""
    body = b"blabla"
    quota = (
        f"{{id: q, categories: [attachment], limit: {5 * len(body)}, window: 1h, reason_code: attachments_exceeded}}"
    )
    client = await relay_factory(projects=projects_yaml(upstream.url, f"quotas: [{quota}]"))
    for i in range(5):
        assert await send_attachments(client, EVENT_ID, [("att_1", f"{i}.txt", body)]) < 300
        await upstream.wait_for(i + 1)
        (attachment,) = items(upstream.received[-1], "attachment")
        assert (attachment.payload, attachment.headers.get("filename")) == (body, f"{i}.txt")
    await send_attachments(client, EVENT_ID, [("att_1", "foo.txt", body)])  # Relay: 200, then dropped
    assert await send_attachments(client, EVENT_ID, [("att_1", "foo.txt", body)]) == 429
    await settle(upstream, 5)
