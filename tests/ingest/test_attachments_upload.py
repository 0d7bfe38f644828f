"""Legacy attachment upload (`/api/<project>/events/<event_id>/attachments/`): multipart in, attachments out."""

from __future__ import annotations

import pytest
from aiohttp import FormData

from ..conftest import RelayFactory
from ..support import PROJECT, UPSTREAM_PROJECT, FakeUpstream, auth_header

EVENT_ID = "515539018c9b4260a6f999572f1661ee"
URL = f"/api/{PROJECT}/events/{EVENT_ID}/attachments/"


def _form(*files: tuple[str, str, bytes, str]) -> FormData:
    """A multipart form of (field, filename, data, content type) files and one plain field."""
    form = FormData()
    for name, filename, data, content_type in files:
        form.add_field(name, data, filename=filename, content_type=content_type)
    form.add_field("note", "not an attachment")
    return form


async def test_files_become_attachments_of_the_event(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Every file part is an `event.attachment` item for the path's event id; the answer is 201 with no body."""
    client = await make_relay()
    form = _form(
        ("att_1", "foo.txt", b"heavens no", "text/plain"),
        ("att_2", "bar.bin", b"\x00\x01binary", "application/octet-stream"),
        ("att_3", "empty.txt", b"", "text/plain"),
    )
    resp = await client.post(URL, data=form, headers=auth_header())
    assert resp.status == 201
    assert await resp.read() == b""
    await upstream.wait_for(1)
    rec = upstream.received[0]
    assert rec.path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert rec.envelope.event_id == EVENT_ID
    items = [
        (i.type, i.headers["attachment_type"], i.headers["filename"], i.headers["content_type"], i.payload)
        for i in rec.envelope.items
    ]
    assert items == [
        ("attachment", "event.attachment", "foo.txt", "text/plain", b"heavens no"),
        ("attachment", "event.attachment", "bar.bin", "application/octet-stream", b"\x00\x01binary"),
        ("attachment", "event.attachment", "empty.txt", "text/plain", b""),
    ]


async def test_text_attachment_is_scrubbed(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A text attachment goes through the scrubber like one in an envelope."""
    client = await make_relay(rules="[secrets, pii]")
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    form = _form(("att", "app.log", f"login ok, token={token}\n".encode(), "text/plain"))
    resp = await client.post(URL, data=form, headers=auth_header())
    assert resp.status == 201
    await upstream.wait_for(1)
    payload = upstream.received[0].envelope.items[0].payload
    assert payload.startswith(b"login ok")
    assert token.encode() not in payload


async def test_dashed_event_id(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A dashed event id in the path is written as 32 hex digits."""
    client = await make_relay()
    dashed = "51553901-8C9B-4260-A6F9-99572F1661EE"
    form = _form(("att", "a.txt", b"a", "text/plain"))
    resp = await client.post(f"/api/{PROJECT}/events/{dashed}/attachments/", data=form, headers=auth_header())
    assert resp.status == 201
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.event_id == EVENT_ID


@pytest.mark.parametrize(
    ("url", "data", "headers", "status", "detail"),
    [
        (f"/api/{PROJECT}/events/123abc/attachments/", b"", {}, 400, "event id"),
        (URL, b"just bytes", {"Content-Type": "application/octet-stream"}, 400, "multipart/form-data"),
        (URL, b"--x\r\nbroken", {"Content-Type": "multipart/form-data"}, 400, "multipart"),
    ],
    ids=["bad-event-id", "not-multipart", "no-boundary"],
)
async def test_bad_upload_is_400(
    make_relay: RelayFactory,
    upstream: FakeUpstream,
    url: str,
    data: bytes,
    headers: dict[str, str],
    status: int,
    detail: str,
) -> None:
    """A bad event id (Relay's own test sends `123abc`) or a body that is not multipart is 400 with a detail."""
    client = await make_relay()
    resp = await client.post(url, data=data, headers={**auth_header(), **headers})
    assert resp.status == status
    assert detail in (await resp.json())["detail"]
    assert not upstream.received


async def test_attachment_over_limit_is_413(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """An attachment over limits.max_attachment_size is 413, as in an envelope."""
    client = await make_relay("limits: {max_attachment_size: 1KiB}")
    form = _form(("att", "big.bin", b"x" * 2048, "application/octet-stream"))
    resp = await client.post(URL, data=form, headers=auth_header())
    assert resp.status == 413
    assert "max_attachment_size" in (await resp.json())["detail"]


async def test_without_auth_is_401(make_relay: RelayFactory) -> None:
    """An upload without credentials is 401."""
    client = await make_relay()
    resp = await client.post(URL, data=_form(("att", "a.txt", b"a", "text/plain")))
    assert resp.status == 401
    assert "detail" in await resp.json()
