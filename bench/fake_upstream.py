"""A stand-in for Sentry that answers `200 {}` at once: counts envelopes and never parses them.

    python bench/fake_upstream.py --port N

A bare asyncio protocol rather than aiohttp, so that it costs the load generator's core as little as
possible. `GET /stats` answers `{"envelopes": n, "bytes": n, "upstream_key": n}`; `upstream_key`
counts requests whose X-Sentry-Auth carries the upstream key, which shows the relay rewrote the DSN.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workload import UPSTREAM_KEY

_OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
_KEY = f"sentry_key={UPSTREAM_KEY}".encode()


class Stats:
    """Counters since start."""

    def __init__(self) -> None:
        self.envelopes = 0
        self.bytes = 0
        self.upstream_key = 0

    def response(self) -> bytes:
        body = orjson.dumps({"envelopes": self.envelopes, "bytes": self.bytes, "upstream_key": self.upstream_key})
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode() + body


class UpstreamProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive requests with Content-Length bodies (what aiohttp's client sends)."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = 0
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at + 2)
                length = int(lower[at + 17 : stop if stop >= 0 else None])
            if len(self.buffer) < end + 4 + length:
                return
            del self.buffer[: end + 4 + length]
            assert self.transport is not None
            if head.startswith(b"POST /api/"):
                self.stats.envelopes += 1
                self.stats.bytes += length
                if _KEY in head:
                    self.stats.upstream_key += 1
                self.transport.write(_OK)
            elif head.startswith(b"GET /stats"):
                self.transport.write(self.stats.response())
            else:
                self.transport.write(_NOT_FOUND)


async def serve(port: int) -> None:
    """Listen on 127.0.0.1:port until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stats = Stats()
    server = await loop.create_server(lambda: UpstreamProtocol(stats), "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
