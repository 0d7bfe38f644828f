"""upstream.compression: the encoding, level and smallest compressed size of bodies sent upstream."""

from __future__ import annotations

import asyncio
import gzip
from typing import Any

import pytest
import zstandard
from aiohttp import web

from relay.app import create_app
from relay.config import parse_config
from relay.config.loader import ConfigError

from ..support import PROJECT, auth_header, envelope_bytes, make_config


class RawUpstream:
    """A real HTTP server that keeps each request's Content-Encoding and raw body bytes."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, bytes]] = []

    def app(self) -> web.Application:
        """The app serving the envelope endpoint."""
        app = web.Application()
        app.router.add_post("/api/{project}/envelope/", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.headers.get("Content-Encoding"), await request.content.read()))
        return web.json_response({})


@pytest.mark.parametrize(
    ("setting", "encoding"),
    [("zstd", "zstd"), ("{encoding: gzip, level: 9}", "gzip"), ("{encoding: zstd, min_size: 1MiB}", None)],
)
async def test_bodies_leave_in_the_configured_encoding(
    aiohttp_client: Any, aiohttp_server: Any, setting: str, encoding: str | None
) -> None:
    """What the upstream gets decodes to the envelope, in the configured encoding (none under min_size)."""
    raw = RawUpstream()
    server = await aiohttp_server(raw.app(), auto_decompress=False)  # the bytes as they were sent
    url = str(server.make_url("")).rstrip("/")
    config = make_config(url, "").upstream
    client = await aiohttp_client(
        create_app(make_config(url, f"upstream: {{url: {url}, compression: {setting}, timeout: {config.timeout}}}"))
    )
    body = envelope_bytes({"event_id": "c" * 32}, ({"type": "event"}, b'{"message":"hello"}'))
    resp = await client.post(f"/api/{PROJECT}/envelope/", data=body, headers=auth_header())
    assert resp.status == 200
    for _ in range(500):
        if raw.seen:
            break
        await asyncio.sleep(0.01)
    ((got_encoding, payload),) = raw.seen
    assert got_encoding == encoding
    if encoding == "zstd":
        payload = zstandard.ZstdDecompressor().decompressobj().decompress(payload)
    elif encoding == "gzip":
        payload = gzip.decompress(payload)
    assert b'"message":"hello"' in payload


@pytest.mark.parametrize(
    ("yaml", "problem"),
    [
        ("upstream: {compression: brotli}", "upstream.compression"),
        ("upstream: {compression: {encoding: gzip, level: 12}}", "upstream.compression.level"),
        ("upstream: {compression: {encoding: zstd, level: 0}}", "upstream.compression.level"),
        ("upstream: {compression: {encoding: zstd, speed: 3}}", "upstream.compression"),
    ],
)
def test_bad_settings_name_the_key(yaml: str, problem: str) -> None:
    """A wrong encoding, a level out of range or an unknown key is a config error naming where it is."""
    with pytest.raises(ConfigError, match=problem.replace(".", r"\.")):
        parse_config(yaml, "relay.yml", {})


def test_default_is_gzip_level_one() -> None:
    """Without a setting, bodies go gzip at level 1 (the encoding's fast default)."""
    upstream = parse_config("", "relay.yml", {}).upstream
    assert (upstream.compression, upstream.compression_level, upstream.compression_min_size) == ("gzip", 0, 0)
