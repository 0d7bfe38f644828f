"""Canary probe: an e-mail address and a card number planted in every field of every item type never leave.

The relay runs as a real process with a SQLite spool and debug logs in a file; envelopes go in over HTTP and
out to a real HTTP upstream. The canaries must appear nowhere: not in what the upstream got, not in any file
of the spool (read while entries wait in it and after the drain), not in the logs, not in the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from relay.envelope import parse_envelope

from ..scrub import rrweb
from ..support import KEY, PROJECT, UPSTREAM_KEY, UPSTREAM_PROJECT, auth_header, envelope_bytes
from .test_process import free_port, subprocess_env

EMAIL = "canary.probe@example.com"
CARD = "4012 8888 8888 1881"  # a Luhn-valid test card
CANARY = f"{EMAIL} paid with {CARD}"
CONTACT = "reply.to.me@example.net"  # a feedback's contact address: forwarded as given
MARKER = "probe-marker-" + uuid.uuid4().hex[:12]  # rides along unscrubbed: proves each place was really read
# What must never be found, in the forms a leak could take (JSON and URL escaping included).
NEEDLES = (
    b"canary.probe",
    b"canary%2Eprobe",
    b"4012888888881881",
    b"4012 8888 8888 1881",
    b"4012%208888",
    b"4012+8888",
)
TRACE_ID = "fb5cd9fddf8a465a8b0d054660cd6377"
SPAN_ID = "9af0571ca31e416a"
TS = "2024-03-15T10:22:33.000Z"


def leaks(data: bytes) -> list[str]:
    """The needles found in `data`, each with a little context."""
    found = []
    for needle in NEEDLES:
        at = data.find(needle)
        if at >= 0:
            found.append(repr(data[max(0, at - 80) : at + len(needle) + 20]))
    return found


# -- what is planted ---------------------------------------------------------------------------------


def event_payload(event_id: str) -> dict[str, Any]:
    """An error event with a canary in every field that can hold text, and `_meta` carrying it as `val`."""
    frame = {
        "function": "charge",
        "module": "shop.billing",
        "filename": f"/home/{EMAIL}/shop/billing.py",
        "abs_path": "/Users/4012888888881881/shop/billing.py",
        "lineno": 12,
        "context_line": CANARY,
        "pre_context": [CANARY],
        "post_context": [CANARY],
        "vars": {"customer": CANARY, "card_number": 4012888888881881, "nested": {"list": [CANARY]}},
    }
    return {
        "event_id": event_id,
        "platform": "python",
        "level": "error",
        "message": f"{MARKER} {CANARY}",
        "logentry": {"message": "charge failed for %s", "params": [CANARY], "formatted": f"charge failed {CANARY}"},
        "culprit": CANARY,
        "transaction": f"/checkout/{EMAIL}",
        "server_name": CANARY,
        "exception": {
            "values": [
                {
                    "type": "ChargeError",
                    "value": CANARY,
                    "module": "shop.billing",
                    "mechanism": {
                        "type": "celery",
                        "handled": False,
                        "description": CANARY,
                        "data": {"task": CANARY, "args": [CANARY]},
                        "help_link": f"https://docs.example.com/?user={EMAIL}",
                    },
                    "stacktrace": {"frames": [frame]},
                }
            ]
        },
        "threads": {"values": [{"id": 1, "name": CANARY, "stacktrace": {"frames": [frame]}}]},
        "breadcrumbs": {
            "values": [
                {
                    "timestamp": TS,
                    "category": "http",
                    "message": CANARY,
                    "data": {"url": f"https://x.example/?e={EMAIL}"},
                },
                {"timestamp": TS, "category": "query", "message": f"SELECT * FROM users WHERE email = '{EMAIL}'"},
            ]
        },
        "request": {
            "url": f"https://shop.example.com/u/{EMAIL}?card=4012888888881881",
            "method": "POST",
            "query_string": f"email={EMAIL}&card=4012888888881881",
            "headers": {"X-Customer": CANARY, "Cookie": f"session={EMAIL}", "Referer": f"https://x.example/{EMAIL}"},
            "cookies": {"customer": CANARY},
            "data": {"email": EMAIL, "card": CARD, "note": CANARY},
            "env": {"CUSTOMER": CANARY},
        },
        "user": {"id": EMAIL, "email": EMAIL, "username": CANARY, "ip_address": "203.0.113.9", "data": {"c": CANARY}},
        "extra": {"customer": CANARY, "deep": {"list": [CANARY, {"x": CANARY}]}},
        "tags": {"customer": CANARY},
        "contexts": {
            "trace": {"trace_id": TRACE_ID, "span_id": SPAN_ID, "data": {"customer": CANARY}},
            "app": {"app_name": CANARY},
            "custom": {"customer": CANARY},
        },
        "debug_meta": {
            "images": [
                {
                    "type": "macho",
                    "arch": "arm64",
                    "image_addr": "0x100000000",
                    "debug_id": "550e8400-e29b-41d4-a716-446655440000",
                    "code_file": f"/Users/{EMAIL}/Library/Shop.app/Shop",
                    "debug_file": f"C:\\Users\\{EMAIL}\\shop.pdb",
                },
                {"type": "elf", "code_file": "/home/4012888888881881/lib/libshop.so"},
            ]
        },
        "_meta": {
            "message": {"": {"val": CANARY, "len": 99, "rem": [["!limit", "s"], [EMAIL, "x"]]}},
            "extra": {"customer": {"": {"val": CANARY, "err": [["invalid_data", {"value": CANARY}]]}}},
            EMAIL: {"": {"val": CANARY}},
        },
    }


def transaction_payload(event_id: str) -> dict[str, Any]:
    """A transaction whose spans, contexts and name carry canaries."""
    return {
        "event_id": event_id,
        "type": "transaction",
        "transaction": f"/checkout/{EMAIL}",
        "start_timestamp": TS,
        "timestamp": TS,
        "contexts": {"trace": {"trace_id": TRACE_ID, "span_id": SPAN_ID, "op": "http", "data": {"c": CANARY}}},
        "spans": [
            {
                "span_id": "aaaaaaaaaaaaaaaa",
                "parent_span_id": SPAN_ID,
                "trace_id": TRACE_ID,
                "op": "db",
                "description": f"SELECT * FROM users WHERE email = '{EMAIL}' AND card = '4012888888881881'",
                "data": {"db.statement": CANARY, "url": f"https://x.example/?e={EMAIL}"},
                "tags": {"customer": CANARY},
                "start_timestamp": TS,
                "timestamp": TS,
            }
        ],
        "tags": {"customer": CANARY},
        "extra": {"customer": CANARY},
        "user": {"email": EMAIL},
        "_meta": {"transaction": {"": {"val": f"/checkout/{EMAIL}"}}, "spans": {"0": {"": {"val": CANARY}}}},
    }


def envelope_header(event_id: str) -> dict[str, Any]:
    """An envelope header with canaries in the trace context, the SDK info and custom fields."""
    return {
        "event_id": event_id,
        "dsn": f"http://{KEY}@127.0.0.1/{PROJECT}",
        "sent_at": TS,
        "sdk": {"name": "sentry.python", "version": "2.0.0", "integrations": [CANARY]},
        "trace": {
            "trace_id": TRACE_ID,
            "public_key": KEY,
            "release": "shop@1.0",
            "environment": "prod",
            "user_id": EMAIL,
            "user_segment": CANARY,
            "transaction": f"/checkout/{EMAIL}",
            "sample_rate": "1",
            "custom": CANARY,
        },
        "x_customer": CANARY,
    }


def item(headers: dict[str, Any], payload: Any) -> tuple[dict[str, Any], bytes]:
    """An item with JSON or raw bytes, its header carrying a canary in a custom field."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return ({"x_customer": CANARY, **headers}, body)


def envelopes() -> Iterator[tuple[str, bytes]]:
    """(what, envelope bytes) for every item type, each envelope with a canary-laden header."""

    def env(what: str, *items: tuple[dict[str, Any], bytes]) -> tuple[str, bytes]:
        return what, envelope_bytes(envelope_header(uuid.uuid4().hex), *items)

    event_id = uuid.uuid4().hex
    yield (
        "event with attachments and a user report",
        envelope_bytes(
            envelope_header(event_id),
            item({"type": "event"}, event_payload(event_id)),
            item(
                {
                    "type": "attachment",
                    "filename": f"/Users/{EMAIL}/notes for {EMAIL}.log",
                    "content_type": "text/plain",
                },
                f"{MARKER}\nline one {CANARY}\nline two {EMAIL}\n".encode(),
            ),
            item({"type": "attachment", "filename": "state.json", "content_type": "application/json"}, {"c": CANARY}),
            item(
                {"type": "attachment", "attachment_type": "event.minidump", "filename": f"{EMAIL}.dmp"},
                b"MDMP\x00\x00" + CANARY.encode(),
            ),
            item({"type": "user_report"}, {"event_id": event_id, "email": EMAIL, "name": CANARY, "comments": CANARY}),
        ),
    )
    tx_id = uuid.uuid4().hex
    profile = {
        "version": "1",
        "platform": "python",
        "device": {"model": CANARY},
        "transaction": {"name": f"/checkout/{EMAIL}", "id": tx_id, "trace_id": TRACE_ID},
        "profile": {"frames": [{"filename": f"/home/{EMAIL}/shop.py", "function": "f"}], "samples": [], "stacks": []},
    }
    yield env(
        "transaction with a profile",
        item({"type": "transaction"}, transaction_payload(tx_id)),
        item({"type": "profile"}, profile),
    )
    session = {
        "sid": "7c7b6e2f6b2d4a6c9a6b7c8d9e0f1a2b",
        "did": EMAIL,
        "status": "ok",
        "started": TS,
        "attrs": {"release": "shop@1.0", "environment": "prod", "ip_address": "203.0.113.9", "user_agent": CANARY},
    }
    sessions = {"aggregates": [{"started": TS, "did": EMAIL, "exited": 1}], "attrs": {"release": "shop@1.0"}}
    yield env("sessions", item({"type": "session"}, session), item({"type": "sessions"}, sessions))
    log = {
        "items": [
            {
                "timestamp": 1710498153.5,
                "level": "info",
                "body": CANARY,
                "trace_id": TRACE_ID,
                "attributes": {
                    "user.email": {"type": "string", "value": EMAIL},
                    "c": {"type": "string", "value": CANARY},
                },
            }
        ]
    }
    yield env(
        "logs", item({"type": "log", "item_count": 1, "content_type": "application/vnd.sentry.items.log+json"}, log)
    )
    check_in = {
        "check_in_id": "83a7c03ed0a04e1b97e2e3b18d38f244",
        "monitor_slug": f"nightly-{EMAIL}",
        "status": "error",
        "contexts": {"trace": {"trace_id": TRACE_ID}},
        "monitor_config": {"schedule": {"type": "crontab", "value": "0 0 * * *"}, "owner": CANARY},
    }
    yield env("check-in", item({"type": "check_in"}, check_in))
    report = {
        "timestamp": TS,
        "discarded_events": [
            {"reason": "before_send", "category": "error", "quantity": 1, "note": CANARY},
            {"reason": EMAIL, "category": "error", "quantity": 1},
            {"reason": "sample_rate", "category": "x4012-8888-8888-1881", "quantity": 1},
        ],
        "note": CANARY,
    }
    yield env("client report", item({"type": "client_report"}, report))
    span = {
        "span_id": "bbbbbbbbbbbbbbbb",
        "trace_id": TRACE_ID,
        "op": "http.client",
        "description": f"GET https://x.example/?e={EMAIL}",
        "data": {"customer": CANARY},
        "start_timestamp": 1710498153.0,
        "timestamp": 1710498154.0,
        "_meta": {"description": {"": {"val": CANARY, "len": 40}}},  # other items' `_meta` is scanned as data
    }
    yield env("span", item({"type": "span"}, span))
    feedback = {
        "event_id": uuid.uuid4().hex,
        "contexts": {
            # contact_email is the one value kept on purpose (so someone can answer; Sentry's Relay keeps it too)
            "feedback": {"message": CANARY, "contact_email": CONTACT, "name": CANARY, "url": f"https://x/?e={EMAIL}"}
        },
        "user": {"email": EMAIL},
    }
    yield env("feedback", item({"type": "feedback"}, feedback))
    replay = {
        "type": "replay_event",
        "replay_id": uuid.uuid4().hex,
        "urls": [f"https://x/?e={EMAIL}"],
        "user": {"email": EMAIL},
    }
    yield env(
        "replay",
        item({"type": "replay_event"}, replay),
        item(
            {"type": "replay_recording"},
            rrweb.recording(rrweb.segment(f"{MARKER} {CANARY}", EMAIL, f"https://x/?e={EMAIL}")),
        ),
    )
    yield env("unknown item type", item({"type": "future_item"}, {"customer": CANARY}))
    big = f"{MARKER} {CANARY}\n".encode() + b"padding line without anything in it\n" * 9000
    yield env(
        "large envelope (scrubbed in the child process)",
        item({"type": "attachment", "filename": f"/Users/{EMAIL}/big.txt", "content_type": "text/plain"}, big),
    )


# -- the relay and its upstream ----------------------------------------------------------------------


@dataclass
class RecordingUpstream:
    """A real HTTP server standing in for Sentry: keeps every request's raw (decompressed) body and headers,
    and holds its answers until `release` is set, so entries wait in the relay's spool meanwhile."""

    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    headers: list[bytes] = field(default_factory=list)
    decoded: list[bytes] = field(default_factory=list)  # replay recordings' rrweb JSON
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        """The aiohttp app serving `/api/<project>/envelope/`."""
        app = web.Application(client_max_size=1024**3)
        app.router.add_post("/api/{project}/envelope/", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        await self.release.wait()
        body = await request.read()
        if body.startswith(b"\x1f\x8b"):  # in case the server left the Content-Encoding to us
            body = gzip.decompress(body)
        # Replay recordings leave compressed: their rrweb JSON is kept beside, so the grep sees it.
        self.decoded.extend(
            orjson.dumps(rrweb.events_of(item.payload))
            for item in parse_envelope(body).items
            if item.type == "replay_recording"
        )
        self.bodies.append(body)
        self.headers.append("\n".join(f"{k}: {v}" for k, v in request.headers.items()).encode())
        return web.json_response({})

    def item_types(self) -> set[str]:
        """Every item type received."""
        return {item.type for body in self.bodies for item in parse_envelope(body).items}


@pytest.fixture
async def recording_upstream(aiohttp_server: Any) -> RecordingUpstream:
    """A running recording upstream."""
    upstream = RecordingUpstream()
    server = await aiohttp_server(upstream.app())
    upstream.url = str(server.make_url("")).rstrip("/")
    return upstream


def config_text(port: int, upstream_url: str) -> str:
    """SQLite spool, debug logs (JSON), the audit log on, and time enough to scrub on a busy machine."""
    dsn = f"{upstream_url.replace('://', f'://{UPSTREAM_KEY}@')}/{UPSTREAM_PROJECT}"
    return f"""
listen: {{host: 127.0.0.1, port: {port}}}
upstream:
  url: {upstream_url}
  timeout: 30s
  retry: {{initial: 10ms, max: 50ms, max_elapsed: 60s}}
  batch: {{linger: 1ms}}
shutdown_timeout: 10s
log: {{level: debug, format: json}}
spool: {{backend: sqlite, path: ./spool}}
scrub: {{timeout: 5s, audit_log: ./audit.jsonl}}
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
    upstream_dsn: "{dsn}"
"""


@pytest.fixture
async def relay_process(tmp_path: Path, recording_upstream: RecordingUpstream) -> AsyncIterator[RelayRun]:
    """`python -m relay run` in `tmp_path`, its stderr in `relay.log`; killed at teardown if still running."""
    port = free_port()
    config = tmp_path / "relay.yml"
    config.write_text(config_text(port, recording_upstream.url))
    log = tmp_path / "relay.log"
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "relay", "run", "--config", str(config)),
            cwd=str(tmp_path),
            env=subprocess_env(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )
    run = RelayRun(proc, f"http://127.0.0.1:{port}", tmp_path)
    try:
        yield run
    finally:
        recording_upstream.release.set()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@dataclass
class RelayRun:
    """A relay process and the folder its spool, logs and audit log are in."""

    proc: asyncio.subprocess.Process
    url: str
    folder: Path

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 30.0) -> None:
        """Poll /readyz until it answers 200."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            assert self.proc.returncode is None, self.log_text()
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"{self.url}/readyz") as resp:
                    if resp.status == 200:
                        return
            assert loop.time() < deadline, "relay never became ready:\n" + self.log_text()
            await asyncio.sleep(0.05)

    def log_text(self) -> str:
        """What the relay logged so far."""
        return (self.folder / "relay.log").read_text(errors="replace")

    def spool_bytes(self) -> bytes:
        """The raw bytes of every file in the spool folder (database, WAL, shared memory, partitions)."""
        files = sorted(p for p in (self.folder / "spool").rglob("*") if p.is_file())
        assert files, "the spool folder has no files"
        return b"".join(p.read_bytes() for p in files)


async def post(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    """POST to the relay and require a 200."""
    async with session.post(url, data=body, headers={**auth_header(), **(headers or {})}) as resp:
        assert resp.status == 200, f"{url}: {resp.status} {await resp.text()}"


async def send_everything(session: aiohttp.ClientSession, relay: RelayRun) -> None:
    """Every envelope, plus the store, security and minidump endpoints."""
    api = f"{relay.url}/api/{PROJECT}"
    for _, body in envelopes():
        await post(session, f"{api}/envelope/", body)
    await post(session, f"{api}/store/", orjson.dumps({"message": CANARY, "user": {"email": EMAIL}}))
    csp = {
        "csp-report": {
            "document-uri": f"https://shop.example.com/u/{EMAIL}",
            "blocked-uri": "https://cdn.example.com/?card=4012888888881881",
            "violated-directive": "script-src",
        }
    }
    await post(
        session,
        f"{api}/security/?sentry_key={KEY}&sentry_release={EMAIL}&sentry_environment=prod",
        orjson.dumps(csp),
        {"Content-Type": "application/csp-report"},
    )
    # Built by hand, as sentry-native sends it: aiohttp's FormData would percent-encode the file names.
    parts = [
        (b'name="sentry[user][email]"', EMAIL.encode()),
        (b'name="sentry[extra][customer]"', CANARY.encode()),
        (b'name="upload_file_minidump"; filename="' + EMAIL.encode() + b'.dmp"', b"MDMP\x00\x00" + CANARY.encode()),
        (b'name="log"; filename="/home/' + EMAIL.encode() + b'/crash.log"', f"crash log {CANARY}\n".encode()),
    ]
    boundary = b"canary-probe-boundary"
    body = b"".join(
        b"--" + boundary + b"\r\nContent-Disposition: form-data; " + disposition + b"\r\n\r\n" + data + b"\r\n"
        for disposition, data in parts
    )
    body += b"--" + boundary + b"--\r\n"
    content_type = {"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"}
    await post(session, f"{api}/minidump/?sentry_key={KEY}", body, content_type)


# -- the probe ---------------------------------------------------------------------------------------------

EXPECTED_TYPES = {
    "event",
    "attachment",
    "user_report",
    "transaction",
    "profile",
    "session",
    "sessions",
    "log",
    "check_in",
    "client_report",
    "span",
    "feedback",
    "replay_event",
    "replay_recording",  # scrubbed rrweb JSON (its MARKER is checked in the decoded copy)
    "future_item",
    "raw_security",
}


async def test_canaries_appear_nowhere(relay_process: RelayRun, recording_upstream: RecordingUpstream) -> None:
    """Canaries planted in every field of every item type reach neither the upstream, the spool, nor any log."""
    relay = relay_process
    async with aiohttp.ClientSession() as session:
        await relay.wait_ready(session)
        await send_everything(session, relay)
        # Every envelope is in the spool now (it is on disk before the 200), and the upstream holds its answers.
        waiting = relay.spool_bytes()
        assert MARKER.encode() in waiting, "the planted data never reached the spool files: nothing was checked"
        assert not leaks(waiting), leaks(waiting)
        recording_upstream.release.set()
    relay.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(relay.proc.wait(), 30) == 0, relay.log_text()

    upstream = b"\n".join([*recording_upstream.bodies, *recording_upstream.decoded])
    assert MARKER.encode() in upstream and b"[email]" in upstream and b"[creditcard]" in upstream
    assert any(MARKER.encode() in recording for recording in recording_upstream.decoded), "no replay recording read"
    assert CONTACT.encode() in upstream, "the feedback's contact address was not kept"
    assert recording_upstream.item_types() >= EXPECTED_TYPES, EXPECTED_TYPES - recording_upstream.item_types()
    assert not leaks(upstream), leaks(upstream)
    assert not leaks(b"\n".join(recording_upstream.headers))
    after = relay.spool_bytes()
    assert not leaks(after), leaks(after)
    logs = (relay.folder / "relay.log").read_bytes()
    assert b'"level":"debug"' in logs and b'"msg":"relay stopped"' in logs, "the logs were not captured"
    assert not leaks(logs), leaks(logs)
    audit = (relay.folder / "audit.jsonl").read_bytes()
    assert b'"rule":"pii.email"' in audit and b'"rule":"client_report.schema"' in audit
    assert not leaks(audit), leaks(audit)


async def test_canaries_in_object_keys_appear_nowhere(
    relay_process: RelayRun, recording_upstream: RecordingUpstream
) -> None:
    """Canaries used as object keys (event fields, headers, log attributes) don't leave either."""
    relay = relay_process
    event_id = uuid.uuid4().hex
    event = {
        "event_id": event_id,
        "message": MARKER,
        "extra": {EMAIL: "x", CARD: "y"},
        "tags": {EMAIL: "x"},
        "contexts": {"custom": {EMAIL: "x"}},
        "request": {"headers": {f"X-{EMAIL}": "1"}, "data": {EMAIL: {"nested": True}}},
        "user": {"data": {"4012888888881881": 1}},
    }
    log = {
        "items": [
            {"timestamp": 1.0, "level": "info", "body": "b", "attributes": {EMAIL: {"type": "string", "value": "v"}}}
        ]
    }
    body = envelope_bytes(
        {"event_id": event_id, EMAIL: "x", "trace": {"trace_id": TRACE_ID, EMAIL: "x"}},
        ({"type": "event", EMAIL: "x"}, orjson.dumps(event)),
        ({"type": "log"}, orjson.dumps(log)),
        ({"type": "future_item"}, orjson.dumps({EMAIL: "x"})),
    )
    async with aiohttp.ClientSession() as session:
        await relay.wait_ready(session)
        await post(session, f"{relay.url}/api/{PROJECT}/envelope/", body)
        recording_upstream.release.set()
    relay.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(relay.proc.wait(), 30) == 0, relay.log_text()
    upstream = b"\n".join([*recording_upstream.bodies, *recording_upstream.decoded])
    assert MARKER.encode() in upstream
    everything = upstream + relay.spool_bytes() + (relay.folder / "relay.log").read_bytes()
    audit = relay.folder / "audit.jsonl"
    if audit.exists():
        everything += audit.read_bytes()
    assert not leaks(everything), leaks(everything)
