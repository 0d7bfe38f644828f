"""Content-Encoding on ingest: every codec SDKs use, corrupt input, and decompression bombs."""

from __future__ import annotations

import gzip
import random
import time
import zlib
from collections.abc import Callable
from typing import Any

import brotli
import orjson
import pytest
import zstandard

from ..conftest import RelayFactory
from ..support import PROJECT, FakeUpstream, auth_header, envelope_bytes

EVENT_ID = "c0ffee00c0ffee00c0ffee00c0ffee00"
URL = f"/api/{PROJECT}/envelope/"
BOMB_SIZE = 200 * 1024 * 1024
SMALL_LIMIT = "limits: {max_decompressed_size: 1MiB}"


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def _zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def _zstd_stream(data: bytes) -> bytes:
    """A zstd frame without a content size in its header, as streaming compressors write it."""
    compressor = zstandard.ZstdCompressor().compressobj()
    return compressor.compress(data) + compressor.flush()


CODECS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip": ("gzip", gzip.compress),
    "x-gzip": ("x-gzip", gzip.compress),
    "deflate-zlib": ("deflate", zlib.compress),
    "deflate-raw": ("deflate", _raw_deflate),
    "br": ("br", brotli.compress),
    "zstd": ("zstd", _zstd),
    "zstd-stream": ("zstd", _zstd_stream),
}


def _zero_stream(compress_chunk: Callable[[bytes], bytes], finish: Callable[[], bytes], size: int) -> bytes:
    chunk = bytes(1024 * 1024)
    parts = [compress_chunk(chunk) for _ in range(size // len(chunk))]
    parts.append(finish())
    return b"".join(parts)


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """200 MiB of zeros, gzip-compressed (about 200 KB)."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return _zero_stream(compressor.compress, compressor.flush, BOMB_SIZE)


@pytest.fixture(scope="module")
def br_bomb() -> bytes:
    """200 MiB of zeros, brotli-compressed (a few hundred bytes)."""
    compressor = brotli.Compressor(quality=5)
    return _zero_stream(compressor.process, compressor.finish, BOMB_SIZE)


@pytest.fixture(scope="module")
def zstd_bomb() -> bytes:
    """200 MiB of zeros, zstd-compressed as a stream (no content size in the frame)."""
    compressor = zstandard.ZstdCompressor().compressobj()
    return _zero_stream(compressor.compress, compressor.flush, BOMB_SIZE)


def _event(message: str = "compressed") -> bytes:
    return envelope_bytes({"event_id": EVENT_ID}, ({"type": "event"}, orjson.dumps({"message": message})))


def _sized_envelope(total: int) -> bytes:
    """An envelope of exactly `total` bytes: one attachment padded to fit."""
    empty = envelope_bytes({}, ({"type": "attachment"}, b""))
    pad = total - len(empty)
    payload = b"p" * pad
    while len(envelope_bytes({}, ({"type": "attachment"}, payload))) > total:
        payload = payload[:-1]
    body = envelope_bytes({}, ({"type": "attachment"}, payload))
    assert len(body) == total
    return body


@pytest.mark.parametrize("codec", list(CODECS))
async def test_compressed_body_accepted(make_relay: RelayFactory, upstream: FakeUpstream, codec: str) -> None:
    """Bodies compressed with gzip, deflate (zlib and raw), br or zstd are decoded and forwarded."""
    encoding, compress = CODECS[codec]
    client = await make_relay()
    resp = await client.post(URL, data=compress(_event(codec)), headers={**auth_header(), "Content-Encoding": encoding})
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[0].json() == {"message": codec}


@pytest.mark.parametrize("codec", ["gzip", "deflate-zlib", "deflate-raw", "br", "zstd"])
async def test_large_compressed_body_byte_identical(
    make_relay: RelayFactory, upstream: FakeUpstream, codec: str
) -> None:
    """A multi-megabyte compressed attachment arrives upstream byte for byte."""
    encoding, compress = CODECS[codec]
    rng = random.Random(7)
    payload = bytes(rng.getrandbits(8) for _ in range(256 * 1024)) + b"abc" * 1_000_000
    body = envelope_bytes({"event_id": EVENT_ID}, ({"type": "attachment", "filename": "big.bin"}, payload))
    client = await make_relay()
    resp = await client.post(URL, data=compress(body), headers={**auth_header(), "Content-Encoding": encoding})
    assert resp.status == 200
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[0].payload == payload


async def test_identity_encoding_accepted(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`Content-Encoding: identity` means no encoding."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(), headers={**auth_header(), "Content-Encoding": "identity"})
    assert resp.status == 200
    assert await resp.json() == {"id": EVENT_ID}
    await upstream.wait_for(1)


async def test_encoding_name_case_insensitive(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """Encoding names are matched without regard to case."""
    client = await make_relay()
    resp = await client.post(URL, data=gzip.compress(_event()), headers={**auth_header(), "Content-Encoding": "GZIP"})
    assert resp.status == 200
    await upstream.wait_for(1)


async def test_stacked_encodings_undone_in_reverse(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """`Content-Encoding: deflate, gzip` means deflate then gzip were applied; both are undone."""
    client = await make_relay()
    body = gzip.compress(zlib.compress(_event("stacked")))
    resp = await client.post(URL, data=body, headers={**auth_header(), "Content-Encoding": "deflate, gzip"})
    assert resp.status == 200
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[0].json() == {"message": "stacked"}


async def test_concatenated_gzip_members(make_relay: RelayFactory, upstream: FakeUpstream) -> None:
    """A gzip body of several members decodes to their concatenation (RFC 1952)."""
    client = await make_relay()
    body = _event("members")
    data = gzip.compress(body[:10]) + gzip.compress(body[10:])
    resp = await client.post(URL, data=data, headers={**auth_header(), "Content-Encoding": "gzip"})
    assert resp.status == 200
    await upstream.wait_for(1)
    assert upstream.received[0].envelope.items[0].json() == {"message": "members"}


@pytest.mark.parametrize("encoding", ["compress", "xz", "lzma", "bzip2", "snappy"])
async def test_unknown_encoding_is_415(make_relay: RelayFactory, encoding: str) -> None:
    """An encoding the relay does not know is 415 with a detail naming it."""
    client = await make_relay()
    resp = await client.post(URL, data=_event(), headers={**auth_header(), "Content-Encoding": encoding})
    assert resp.status == 415
    assert encoding in (await resp.json())["detail"]


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"this is not gzip at all"),
        ("gzip", gzip.compress(b"x" * 1000)[:-20]),
        ("gzip", gzip.compress(b"{}") + b"trailing junk"),
        ("deflate", b"\xff\xfe\xfd not deflate either"),
        ("br", b"\xff\xff\xff\xff not brotli"),
        ("br", brotli.compress(b"x" * 10000)[:-3]),
        ("zstd", b"\x28\xb5\x2f\xfd garbage after magic"),
        ("zstd", b"not zstd"),
    ],
    ids=[
        "gzip-garbage",
        "gzip-truncated",
        "gzip-trailing-junk",
        "deflate-garbage",
        "br-garbage",
        "br-truncated",
        "zstd-bad-frame",
        "zstd-garbage",
    ],
)
async def test_corrupt_body_is_400(make_relay: RelayFactory, encoding: str, body: bytes) -> None:
    """A body that does not decode under its declared encoding is 400 with a detail."""
    client = await make_relay()
    resp = await client.post(URL, data=body, headers={**auth_header(), "Content-Encoding": encoding})
    assert resp.status == 400
    assert f"not valid {encoding}" in (await resp.json())["detail"]


async def _post_bomb(make_relay: RelayFactory, encoding: str, body: bytes) -> None:
    client = await make_relay(SMALL_LIMIT)
    started = time.perf_counter()
    resp = await client.post(URL, data=body, headers={**auth_header(), "Content-Encoding": encoding})
    elapsed = time.perf_counter() - started
    assert resp.status == 413
    assert "max_decompressed_size (1MiB)" in (await resp.json())["detail"]
    assert elapsed < 5.0, f"refusing the bomb took {elapsed:.1f}s: it was decompressed far past the limit"


async def test_gzip_bomb_is_413(make_relay: RelayFactory, gzip_bomb: bytes) -> None:
    """200 MiB of gzip'd zeros is refused with 413 once 1 MiB is decompressed."""
    await _post_bomb(make_relay, "gzip", gzip_bomb)


async def test_deflate_bomb_is_413(make_relay: RelayFactory) -> None:
    """A zlib-deflate bomb is refused with 413."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS)
    await _post_bomb(make_relay, "deflate", _zero_stream(compressor.compress, compressor.flush, 64 * 1024 * 1024))


async def test_raw_deflate_bomb_is_413(make_relay: RelayFactory) -> None:
    """A raw-deflate bomb (no zlib wrapper) is refused with 413."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    await _post_bomb(make_relay, "deflate", _zero_stream(compressor.compress, compressor.flush, 64 * 1024 * 1024))


async def test_br_bomb_is_413(make_relay: RelayFactory, br_bomb: bytes) -> None:
    """200 MiB of brotli'd zeros is refused with 413."""
    await _post_bomb(make_relay, "br", br_bomb)


async def test_zstd_bomb_is_413(make_relay: RelayFactory, zstd_bomb: bytes) -> None:
    """200 MiB of zstd'd zeros is refused with 413."""
    await _post_bomb(make_relay, "zstd", zstd_bomb)


async def test_zstd_bomb_with_content_size_is_413(make_relay: RelayFactory) -> None:
    """A one-shot zstd frame declaring a 64 MiB content size is refused with 413."""
    await _post_bomb(make_relay, "zstd", zstandard.ZstdCompressor().compress(bytes(64 * 1024 * 1024)))


async def test_nested_gzip_bomb_is_413(make_relay: RelayFactory, gzip_bomb: bytes) -> None:
    """A bomb wrapped in a second gzip layer is still refused with 413."""
    await _post_bomb(make_relay, "gzip, gzip", gzip.compress(gzip_bomb))


async def test_concatenated_gzip_members_bomb_is_413(make_relay: RelayFactory) -> None:
    """Many small gzip members that together pass the limit are refused with 413."""
    member = gzip.compress(bytes(512 * 1024))
    await _post_bomb(make_relay, "gzip", member * 8)


@pytest.mark.parametrize("codec", ["gzip", "deflate-zlib", "deflate-raw", "br", "zstd", "zstd-stream"])
async def test_decompressed_size_boundary(make_relay: RelayFactory, upstream: FakeUpstream, codec: str) -> None:
    """Exactly max_decompressed_size bytes is accepted; one byte more is 413."""
    encoding, compress = CODECS[codec]
    client = await make_relay("limits: {max_decompressed_size: 64KiB}")
    headers = {**auth_header(), "Content-Encoding": encoding}
    resp = await client.post(URL, data=compress(_sized_envelope(64 * 1024 + 1)), headers=headers)
    assert resp.status == 413
    assert "max_decompressed_size" in (await resp.json())["detail"]
    resp = await client.post(URL, data=compress(_sized_envelope(64 * 1024)), headers=headers)
    assert resp.status == 200
    assert await resp.json() == {}
    await upstream.wait_for(1)
    assert len(upstream.received[0].envelope.items[0].payload) > 60 * 1024


async def test_small_body_that_expands_far_is_decompressed_off_the_loop(
    make_relay: RelayFactory, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """18 KB of gzip that inflate to 10 MB start inline, and go to a thread once past 1 MiB of output; a
    small body that stays small never leaves the loop."""
    import relay.ingest.body as body_module

    threaded: list[int] = []
    real = body_module.asyncio.to_thread

    async def spy(func: Any, *args: Any) -> Any:
        threaded.append(len(args[1]))
        return await real(func, *args)

    monkeypatch.setattr(body_module.asyncio, "to_thread", spy)
    client = await make_relay()
    flood = gzip.compress(b"{}\n" + b'{"type":"client_report"}\n{}\n' * 400_000)
    assert len(flood) < 64 * 1024
    headers = {**auth_header(), "Content-Encoding": "gzip"}
    resp = await client.post(f"/api/{PROJECT}/envelope/", data=flood, headers=headers)
    assert resp.status == 413  # too many items, found after the thread inflated it
    assert threaded == [len(flood)]
    small = gzip.compress(envelope_bytes({}, ({"type": "event"}, b'{"message":"x"}')))
    resp = await client.post(f"/api/{PROJECT}/envelope/", data=small, headers=headers)
    assert resp.status == 200 and threaded == [len(flood)]
