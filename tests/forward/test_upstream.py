"""Upstreams: what HTTP requests look like on the wire, the JSON-lines file sink, and the scheme router."""

from __future__ import annotations

import asyncio
import base64
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from relay import __version__
from relay.app import create_app
from relay.config import UpstreamConfig
from relay.errors import UpstreamUnavailable
from relay.forward import FileUpstream, HttpUpstream, UpstreamRouter
from relay.routing import Target

from ..conftest import RelayFactory, state_of
from ..support import (
    KEY,
    PROJECT,
    UPSTREAM_KEY,
    UPSTREAM_PROJECT,
    FakeUpstream,
    auth_header,
    envelope_bytes,
    outcome_totals,
)
from .test_forwarder import attempt_counts, event_envelope, eventually, free_port, nonzero, settled, tuned_config

LOCAL_PROJECTS = f"""
projects:
  - id: {PROJECT}
    keys: ["{KEY}"]
"""

MIXED_BODY = envelope_bytes(
    {"event_id": "f" * 32, "sdk": {"name": "test"}},
    ({"type": "event"}, b'{"message": "hello", "level": "error"}'),
    ({"type": "attachment", "filename": "blob.bin"}, b"\x00\x01\xffbinary"),
    ({"type": "replay_recording"}, b"\x89PNG not json"),
)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a sink file."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


# -- HTTP: the request on the wire ---------------------------------------------------


class RawUpstream:
    """Records the raw request bytes and headers, without letting aiohttp decompress them."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes, str]] = []

    def app(self) -> web.Application:
        """The aiohttp app serving `/api/<project>/envelope/`."""
        app = web.Application(handler_args={"auto_decompress": False})  # keep gzip bytes as sent
        app.router.add_post("/api/{project}/envelope/", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        """Keep the body as sent, compressed or not."""
        raw = await request.content.read()
        self.requests.append(({k.lower(): v for k, v in request.headers.items()}, raw, request.path))
        return web.json_response({}, headers={"X-Sentry-Rate-Limits": "5:transaction:key", "X-Extra": "yes"})


@pytest.fixture
async def raw_upstream(aiohttp_server: Any) -> tuple[RawUpstream, str]:
    """A running RawUpstream and its base URL."""
    raw = RawUpstream()
    server = await aiohttp_server(raw.app())
    return raw, str(server.make_url("")).rstrip("/")


async def test_forwarded_request_headers(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Forwarded requests are gzip-encoded envelopes with the upstream key and sentry_version=7."""
    client = await make_relay()
    assert (await client.post("/api/42/envelope/", data=event_envelope(), headers=auth_header())).status == 200
    await upstream.wait_for(1)
    headers = {k.lower(): v for k, v in upstream.received[0].headers.items()}
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "application/x-sentry-envelope"
    auth = headers["x-sentry-auth"]
    assert auth.startswith("Sentry ")
    assert "sentry_version=7" in auth
    assert f"sentry_key={UPSTREAM_KEY}" in auth
    assert KEY not in auth
    assert "sentry_client=test/1.0" in auth  # the SDK's client string is passed on
    assert upstream.received[0].path == f"/api/{UPSTREAM_PROJECT}/envelope/"
    assert headers["user-agent"] == f"relay/{__version__}"
    await settled(state_of(client))


async def test_http_upstream_sends_real_gzip(raw_upstream: tuple[RawUpstream, str]) -> None:
    """The body on the wire is gzip that decompresses to the envelope, and the response headers come back lowercased."""
    raw, url = raw_upstream
    upstream = HttpUpstream(UpstreamConfig(url=url))
    await upstream.start()
    try:
        body = event_envelope("9" * 32)
        response = await upstream.send(Target(url, "7", UPSTREAM_KEY), body, None)
    finally:
        await upstream.close()
    assert response.status == 200
    assert response.headers["x-sentry-rate-limits"] == "5:transaction:key"
    assert response.headers["x-extra"] == "yes"
    headers, wire, path = raw.requests[0]
    assert path == "/api/7/envelope/"
    assert headers["content-encoding"] == "gzip"
    assert gzip.decompress(wire) == body
    assert f"sentry_client=relay/{__version__}" in headers["x-sentry-auth"]  # no SDK client: the relay's own


async def test_http_upstream_without_compression(raw_upstream: tuple[RawUpstream, str]) -> None:
    """With compression: none the envelope goes as is, with no Content-Encoding."""
    raw, url = raw_upstream
    upstream = HttpUpstream(UpstreamConfig(url=url, compression="none"))
    await upstream.start()
    try:
        body = event_envelope()
        assert (await upstream.send(Target(url, "7", UPSTREAM_KEY), body, "sdk/2")).status == 200
    finally:
        await upstream.close()
        await upstream.close()  # idempotent
    headers, wire, _ = raw.requests[0]
    assert "content-encoding" not in headers
    assert wire == body
    assert headers["content-type"] == "application/x-sentry-envelope"


async def test_http_upstream_compresses_large_bodies(raw_upstream: tuple[RawUpstream, str]) -> None:
    """Bodies over the inline threshold are still gzip-compressed correctly."""
    raw, url = raw_upstream
    upstream = HttpUpstream(UpstreamConfig(url=url))
    await upstream.start()
    try:
        body = event_envelope(attachment=bytes(range(256)) * 1024)
        assert (await upstream.send(Target(url, "7", UPSTREAM_KEY), body, None)).status == 200
    finally:
        await upstream.close()
    assert gzip.decompress(raw.requests[0][1]) == body


async def test_http_upstream_refused_raises_unavailable() -> None:
    """A refused connection surfaces as UpstreamUnavailable, not as an aiohttp error."""
    url = f"http://127.0.0.1:{free_port()}"
    upstream = HttpUpstream(UpstreamConfig(url=url))
    await upstream.start()
    try:
        with pytest.raises(UpstreamUnavailable) as info:
            await upstream.send(Target(url, "7", UPSTREAM_KEY), event_envelope(), None)
    finally:
        await upstream.close()
    assert str(info.value) != "timeout"


async def test_http_upstream_timeout_raises_unavailable(aiohttp_server: Any) -> None:
    """A response slower than the timeout surfaces as UpstreamUnavailable('timeout')."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/api/{project}/envelope/", slow)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    upstream = HttpUpstream(UpstreamConfig(url=url, timeout=0.1))
    await upstream.start()
    try:
        with pytest.raises(UpstreamUnavailable, match=r"^timeout$"):
            await upstream.send(Target(url, "7", UPSTREAM_KEY), event_envelope(), None)
    finally:
        await upstream.close()


async def test_http_upstream_not_started_raises_unavailable() -> None:
    """Sending before start() is an UpstreamUnavailable, not an AttributeError."""
    upstream = HttpUpstream(UpstreamConfig())
    with pytest.raises(UpstreamUnavailable):
        await upstream.send(Target("http://127.0.0.1:1", "7", UPSTREAM_KEY), b"{}\n", None)


# -- the JSON-lines file sink --------------------------------------------------------------


async def test_file_upstream_absolute_path(tmp_path: Path) -> None:
    """file:///abs/path.jsonl appends one JSON line per envelope; JSON payloads decoded, others base64."""
    path = tmp_path / "nested" / "out.jsonl"
    sink = FileUpstream(f"file://{path}")
    assert sink.path == path
    await sink.start()
    try:
        target = Target(f"file://{path}", "42", KEY)
        assert (await sink.send(target, MIXED_BODY, None)).status == 200
        assert (await sink.send(target, event_envelope("1" * 32), "sdk/1")).status == 200
    finally:
        await sink.close()
        await sink.close()  # idempotent
    first, second = read_lines(path)
    assert first["project"] == "42"
    assert first["public_key"] == KEY
    assert first["headers"] == {"event_id": "f" * 32, "sdk": {"name": "test"}}
    event, attachment, recording = first["items"]
    assert event["headers"]["type"] == "event"
    assert event["payload"] == {"message": "hello", "level": "error"}
    assert "payload_base64" not in event
    assert attachment["headers"]["filename"] == "blob.bin"
    assert base64.b64decode(attachment["payload_base64"]) == b"\x00\x01\xffbinary"
    assert "payload" not in attachment
    assert base64.b64decode(recording["payload_base64"]) == b"\x89PNG not json"
    assert second["headers"]["event_id"] == "1" * 32


async def test_file_upstream_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """file://./x.jsonl is relative to the working directory."""
    monkeypatch.chdir(tmp_path)
    sink = FileUpstream("file://./sub/x.jsonl")
    await sink.start()
    try:
        await sink.send(Target("file://./sub/x.jsonl", "42", KEY), MIXED_BODY, None)
    finally:
        await sink.close()
    lines = read_lines(tmp_path / "sub" / "x.jsonl")
    assert len(lines) == 1
    assert lines[0]["items"][0]["payload"]["message"] == "hello"


async def test_file_upstream_appends_across_reopen(tmp_path: Path) -> None:
    """Reopening the sink appends rather than truncating."""
    path = tmp_path / "out.jsonl"
    for event_id in ("1" * 32, "2" * 32):
        sink = FileUpstream(f"file://{path}")
        await sink.start()
        await sink.send(Target(f"file://{path}", "42", KEY), event_envelope(event_id), None)
        await sink.close()
    assert [line["headers"]["event_id"] for line in read_lines(path)] == ["1" * 32, "2" * 32]


async def test_file_upstream_keeps_bad_json_and_non_envelopes(tmp_path: Path) -> None:
    """A JSON-typed item that is not JSON is base64'd; bytes that are not an envelope are kept raw."""
    path = tmp_path / "out.jsonl"
    sink = FileUpstream(f"file://{path}")
    await sink.start()
    try:
        target = Target(f"file://{path}", "42", KEY)
        await sink.send(target, envelope_bytes({}, ({"type": "event"}, b"{not json")), None)
        await sink.send(target, b"\x00 not an envelope", None)
    finally:
        await sink.close()
    bad_json, raw = read_lines(path)
    assert base64.b64decode(bad_json["items"][0]["payload_base64"]) == b"{not json"
    assert base64.b64decode(raw["raw"]) == b"\x00 not an envelope"
    assert raw["project"] == "42"


async def test_file_upstream_not_started_raises_unavailable(tmp_path: Path) -> None:
    """Sending to a sink that is not open is UpstreamUnavailable."""
    sink = FileUpstream(f"file://{tmp_path / 'x.jsonl'}")
    with pytest.raises(UpstreamUnavailable):
        await sink.send(Target("file:///x", "42", KEY), MIXED_BODY, None)


async def test_router_dispatches_by_scheme(tmp_path: Path, upstream: FakeUpstream) -> None:
    """file: targets go to a sink opened on first use; http: targets go over HTTP."""
    router = UpstreamRouter(UpstreamConfig(url=upstream.url))
    await router.start()
    path = tmp_path / "r.jsonl"
    try:
        await router.send(Target(f"file://{path}", "42", KEY), event_envelope("1" * 32), None)
        await router.send(Target(f"file://{path}", "42", KEY), event_envelope("2" * 32), None)
        response = await router.send(Target(upstream.url, "5", UPSTREAM_KEY), event_envelope("3" * 32), None)
    finally:
        await router.close()
    assert response.status == 200
    assert [line["headers"]["event_id"] for line in read_lines(path)] == ["1" * 32, "2" * 32]
    assert [r.envelope.event_id for r in upstream.received] == ["3" * 32]


async def test_relay_with_file_upstream(tmp_path: Path, aiohttp_client: Any) -> None:
    """A relay whose upstream is file:///… writes accepted envelopes there, one line each, outcome forwarded."""
    path = tmp_path / "sink" / "events.jsonl"
    config = tuned_config(f"file://{path}", {}, projects=LOCAL_PROJECTS)
    client = await aiohttp_client(create_app(config))
    state = state_of(client)
    body = event_envelope("a" * 32, attachment=b"\xffraw")
    assert (await client.post("/api/42/envelope/", data=body, headers=auth_header())).status == 200
    assert (await client.post("/api/42/envelope/", data=event_envelope("b" * 32), headers=auth_header())).status == 200
    await settled(state)
    lines = read_lines(path)
    assert sorted(line["headers"]["event_id"] for line in lines) == ["a" * 32, "b" * 32]
    first = next(line for line in lines if line["headers"]["event_id"] == "a" * 32)
    assert first["project"] == str(PROJECT)
    assert first["public_key"] == KEY
    assert first["items"][0]["payload"] == {"message": "boom"}
    assert base64.b64decode(first["items"][1]["payload_base64"]) == b"\xffraw"
    assert nonzero(outcome_totals(state)) == {("forwarded", "none", "error"): 2, ("forwarded", "none", "attachment"): 1}
    assert nonzero(attempt_counts(state)) == {"200": 2}


async def test_relay_with_relative_file_upstream(
    tmp_path: Path, aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relay configured with file://./out.jsonl writes relative to its working directory."""
    monkeypatch.chdir(tmp_path)
    config = tuned_config("file://./out.jsonl", {}, projects=LOCAL_PROJECTS)
    client = await aiohttp_client(create_app(config))
    state = state_of(client)
    assert (await client.post("/api/42/envelope/", data=event_envelope("c" * 32), headers=auth_header())).status == 200
    await settled(state)
    assert [line["headers"]["event_id"] for line in read_lines(tmp_path / "out.jsonl")] == ["c" * 32]


async def test_unwritable_file_sink_does_not_strand_envelopes(tmp_path: Path, aiohttp_client: Any) -> None:
    """When the file sink cannot be opened the envelope still gets an outcome instead of sitting in the spool."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the sink's directory should be")
    config = tuned_config(
        f"file://{blocker}/out.jsonl",
        {"upstream": {"retry": {"max_elapsed": "200ms"}}, "shutdown_timeout": "1s"},
        projects=LOCAL_PROJECTS,
    )
    client = await aiohttp_client(create_app(config))
    state = state_of(client)
    assert (await client.post("/api/42/envelope/", data=event_envelope(), headers=auth_header())).status == 200
    await eventually(lambda: sum(outcome_totals(state).values()) >= 1, timeout=3, what="an outcome for the envelope")
    await settled(state)
    (outcome, _reason, category), count = next(iter(nonzero(outcome_totals(state)).items()))
    assert (outcome, category, count) == ("dropped", "error", 1)  # retry_exhausted is the natural reason
