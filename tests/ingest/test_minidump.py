"""Native crash uploads (/minidump/): raw and multipart, any size up to the limit, and the event inside them
(`sentry` fields, Electron's chunked and namespaced fields, sentry-native's MessagePack files) merged and scrubbed."""

from __future__ import annotations

import gzip
import os
import re
import uuid

import msgpack
import orjson
from aiohttp import FormData

from ..conftest import RelayFactory
from ..scrub.test_stage_e2e import projects_yaml
from ..support import KEY, PROJECT, FakeUpstream, auth_header

EVENT_ID = "abcdef0123456789abcdef0123456789"
MINIDUMP = b"MDMP\x93\xa7\x00\x00" + b"\x00" * 56 + b"crash data"


async def test_raw_minidump(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A raw minidump body is answered with the event id as text and forwarded with an event."""
    client = await make_relay()
    resp = await client.post(
        f"/api/{PROJECT}/minidump/",
        data=MINIDUMP,
        headers={**auth_header(), "Content-Type": "application/octet-stream"},
    )
    assert resp.status == 200
    answered = await resp.text()  # hyphenated, as Relay answers: the crash reporters expect it so
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", answered)
    event_id = uuid.UUID(answered).hex
    await upstream.wait_for(1)
    envelope = upstream.received[0].envelope
    assert envelope.event_id == event_id
    assert [i.type for i in envelope.items] == ["event", "attachment"]
    event = envelope.items[0].json()
    assert event["event_id"] == event_id
    assert event["platform"] == "native"
    assert envelope.items[1].headers["attachment_type"] == "event.minidump"
    assert envelope.items[1].payload == MINIDUMP


async def test_multipart_minidump(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A multipart upload keeps the minidump, the `sentry` event and extra files; other plain fields go to
    `extra`, as Sentry files them (scrubbed there with the event, when rules are on)."""
    client = await make_relay()
    form = FormData()
    form.add_field("upload_file_minidump", MINIDUMP, filename="crash.dmp", content_type="application/octet-stream")
    form.add_field("sentry", orjson.dumps({"event_id": EVENT_ID, "release": "r1"}).decode())
    form.add_field("log", b"log file contents", filename="app.log", content_type="text/plain")
    form.add_field("some_field", "user@example.com")
    resp = await client.post(f"/api/{PROJECT}/minidump/?sentry_key={KEY}", data=form)
    assert resp.status == 200
    assert uuid.UUID(await resp.text()) == uuid.UUID(EVENT_ID)
    await upstream.wait_for(1)
    envelope = upstream.received[0].envelope
    assert envelope.event_id == EVENT_ID
    assert [i.type for i in envelope.items] == ["event", "attachment", "attachment"]
    assert envelope.items[0].json() == {
        "event_id": EVENT_ID,
        "release": "r1",
        "platform": "native",
        "extra": {"some_field": "user@example.com"},
    }
    assert envelope.items[1].headers["filename"] == "crash.dmp"
    assert envelope.items[1].headers["attachment_type"] == "event.minidump"
    assert envelope.items[1].payload == MINIDUMP
    assert envelope.items[2].headers["filename"] == "app.log"
    assert envelope.items[2].payload == b"log file contents"


def _multipart(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body from (name, filename, data) parts, and its Content-Type."""
    boundary = "----relaytestboundary7f3a"
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


async def test_gzip_encoded_multipart_minidump(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Crashpad's gzip Content-Encoding on a multipart upload is undone before parsing."""
    client = await make_relay()
    body, content_type = _multipart(("upload_file_minidump", "crash.dmp", MINIDUMP))
    headers = {**auth_header(), "Content-Type": content_type, "Content-Encoding": "gzip"}
    resp = await client.post(f"/api/{PROJECT}/minidump/", data=gzip.compress(body), headers=headers)
    assert resp.status == 200
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[1].payload == MINIDUMP


async def test_minidump_sentry_bracket_fields_kept(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`sentry[release]`-style form fields (documented for minidump uploads) reach the upstream."""
    client = await make_relay()
    body, content_type = _multipart(
        ("upload_file_minidump", "crash.dmp", MINIDUMP),
        ("sentry[release]", None, b"app@2.0"),
    )
    resp = await client.post(
        f"/api/{PROJECT}/minidump/", data=body, headers={**auth_header(), "Content-Type": content_type}
    )
    assert resp.status == 200
    await upstream.wait_for(1)
    envelope = upstream.received[0].envelope
    event = envelope.items[0].json()
    form_data = [i.payload for i in envelope.items if i.type == "form_data"]
    assert event.get("release") == "app@2.0" or any(b"app@2.0" in p for p in form_data)


async def test_multipart_without_minidump_is_400(make_relay: RelayFactory) -> None:
    """A multipart upload with no upload_file_minidump is 400 with a detail."""
    client = await make_relay()
    form = FormData()
    form.add_field("other", b"data", filename="x.bin")
    resp = await client.post(f"/api/{PROJECT}/minidump/", data=form, headers=auth_header())
    assert resp.status == 400
    assert "upload_file_minidump" in (await resp.json())["detail"]


async def test_not_a_minidump_is_400(make_relay: RelayFactory) -> None:
    """A body without the MDMP magic is 400 with a detail."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/minidump/", data=b"ELF not a minidump", headers=auth_header())
    assert resp.status == 400
    assert "MDMP" in (await resp.json())["detail"]


async def test_minidump_without_auth_is_401(make_relay: RelayFactory) -> None:
    """A minidump without credentials is 401."""
    client = await make_relay()
    resp = await client.post(f"/api/{PROJECT}/minidump/", data=MINIDUMP)
    assert resp.status == 401
    assert "detail" in await resp.json()


async def _post(client: object, *parts: tuple[str, str | None, bytes]) -> object:
    body, content_type = _multipart(*parts)
    return await client.post(  # type: ignore[attr-defined]
        f"/api/{PROJECT}/minidump/", data=body, headers={**auth_header(), "Content-Type": content_type}
    )


async def test_large_multipart_minidump(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A 3 MiB minidump in a multipart upload (real ones are 100 KB to several MB) arrives byte for byte."""
    client = await make_relay()
    dump = b"MDMP" + os.urandom(3 << 20)
    resp = await _post(client, ("upload_file_minidump", "crash.dmp", dump), ("sentry", None, b'{"release": "r2"}'))
    assert resp.status == 200, await resp.text()
    await upstream.wait_for(1)
    envelope = upstream.received[0].envelope
    assert envelope.items[0].json()["release"] == "r2"
    assert envelope.items[1].payload == dump


def _crumb(message: str, timestamp: str) -> bytes:
    return msgpack.packb({"timestamp": timestamp, "message": message, "category": "ui"})


async def test_sentry_native_msgpack_event_and_breadcrumbs_are_merged_and_scrubbed(
    make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """`__sentry-event` and the breadcrumb ring buffers become the event (older buffer first), scrubbed; they are
    not forwarded as attachments, where they would reach Sentry unscrubbed."""
    projects = projects_yaml(upstream.url, extra="    forward_unscannable: true")  # the dump itself still goes
    client = await make_relay(rules="[secrets, pii]", projects=projects)
    native_event = {
        "event_id": EVENT_ID,
        "level": "fatal",
        "release": "game@1.4",
        "user": {"email": "crash.victim@example.com", "ip_address": "203.0.113.77"},
        "extra": {"token": "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "blob": b"bytes value"},
    }
    newer = _crumb("saved to /home/alice/save.dat", "2026-12-07T10:00:05.000Z") + _crumb(
        "mailed bob@example.org", "2026-12-07T10:00:06.000Z"
    )
    older = _crumb("level loaded", "2026-12-07T10:00:01.000Z")
    resp = await _post(
        client,
        ("upload_file_minidump", "crash.dmp", MINIDUMP),
        ("__sentry-event", "__sentry-event", msgpack.packb(native_event)),
        ("__sentry-breadcrumb1", "__sentry-breadcrumb1", newer),
        ("__sentry-breadcrumb2", "__sentry-breadcrumb2", older),
    )
    assert resp.status == 200
    assert uuid.UUID(await resp.text()) == uuid.UUID(EVENT_ID)
    await upstream.wait_for(1)
    envelope = upstream.received[0].envelope
    assert [i.type for i in envelope.items] == ["event", "attachment"]
    assert envelope.items[1].headers["attachment_type"] == "event.minidump"
    event = envelope.items[0].json()
    assert event["level"] == "fatal" and event["release"] == "game@1.4" and event["platform"] == "native"
    # Older buffer first, then cut to the longer buffer's length from the front: the newest two are kept.
    messages = [crumb["message"] for crumb in event["breadcrumbs"]["values"]]
    assert len(messages) == 2 and messages[0].startswith("saved to ") and "alice" not in messages[0]
    assert messages[1] == "mailed [email]"
    assert event["extra"]["blob"] == "bytes value"
    wire = envelope.serialize()
    for secret in (b"crash.victim@example.com", b"203.0.113.77", b"4eC39HqLyjWDarjtT1zdp7dc", b"bob@example.org"):
        assert secret not in wire


async def test_electron_chunked_and_namespaced_fields_are_merged(
    make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """Electron's `sentry__1..N` chunks (one JSON document, in index order) and `sentry___<ns>` fields reach the
    event, and so do breakpad's `sentry[key]` fields; other plain fields go to `extra`, scrubbed."""
    client = await make_relay(rules="[secrets, pii]")
    document = orjson.dumps({"release": "desktop@3.1", "user": {"email": "eve@example.com"}, "tags": {"os": "win"}})
    cut = len(document) // 2
    resp = await _post(
        client,
        ("upload_file_minidump", "crash.dmp", MINIDUMP),
        ("sentry__2", None, document[cut:]),
        ("sentry__1", None, document[:cut]),
        ("sentry___sentry-contexts", None, b'{"contexts": {"electron": {"version": "28.1.0"}}}'),
        ("sentry[environment]", None, b"production"),
        ("prod", None, b"Electron"),
        ("contact", None, b"mallory@example.net"),
    )
    assert resp.status == 200
    await upstream.wait_for(1)
    event = upstream.received[0].envelope.items[0].json()
    assert event["release"] == "desktop@3.1"
    assert event["tags"] == {"os": "win"}
    assert event["contexts"]["electron"] == {"version": "28.1.0"}
    assert event["environment"] == "production"
    assert event["extra"]["prod"] == "Electron"
    assert event["user"]["email"] != "eve@example.com"
    wire = upstream.received[0].envelope.serialize()
    assert b"eve@example.com" not in wire and b"mallory@example.net" not in wire


async def test_malformed_event_parts_are_skipped_and_the_crash_kept(
    make_relay: RelayFactory, upstream: FakeUpstream
) -> None:
    """A `sentry` field that is not JSON, chunks that don't join into JSON and MessagePack files that aren't:
    each is skipped (as Relay ignores them), and the crash still arrives with its minidump."""
    client = await make_relay()
    resp = await _post(
        client,
        ("upload_file_minidump", "crash.dmp", MINIDUMP),
        ("sentry", None, b"{broken"),
        ("sentry__1", None, b'{"release": '),
        ("sentry___x", None, b"[1, 2]"),
        ("__sentry-event", "__sentry-event", b"\xc1\xc1 not msgpack"),
        ("__sentry-breadcrumb1", "__sentry-breadcrumb1", b"\x81\xa7message"),
        ("__sentry-breadcrumb2", "__sentry-breadcrumb2", b"\x81\x80\x00"),  # a map as a map key
        ("sentry[release]", None, b"kept@1"),
    )
    assert resp.status == 200, await resp.text()
    await upstream.wait_for(1)
    envelope = upstream.received[0].envelope
    assert [i.type for i in envelope.items] == ["event", "attachment"]
    event = envelope.items[0].json()
    assert event["release"] == "kept@1"
    assert "breadcrumbs" not in event
    assert envelope.items[1].payload == MINIDUMP


async def test_gzip_encoded_large_multipart_minidump(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A gzip-encoded upload whose minidump is past aiohttp's stream high-water mark is read whole."""
    client = await make_relay()
    dump = b"MDMP" + b"\x01\x02\x03\x04" * (200 << 10)
    body, content_type = _multipart(("upload_file_minidump", "crash.dmp", dump))
    headers = {**auth_header(), "Content-Type": content_type, "Content-Encoding": "gzip"}
    resp = await client.post(f"/api/{PROJECT}/minidump/?sentry_key={KEY}", data=gzip.compress(body), headers=headers)
    assert resp.status == 200
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[1].payload == dump
