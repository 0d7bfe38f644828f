"""Slow and numerous clients through `relay run`: idle and half-sent requests are closed, a stalled body gets 408,
and connections past listen.max_connections are closed as they arrive (issue 15 #4)."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support import free_port, relay_process

KEY = "abcdef0123456789abcdef0123456789"


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    config = tmp_path / "relay.yml"
    config.write_text(
        f"listen: {{host: 127.0.0.1, port: {port}, idle_timeout: 1s, body_timeout: 1s, max_connections: 8}}\n"
        f"upstream: {{url: 'http://127.0.0.1:9'}}\nspool: {{path: '{tmp_path / 'spool'}'}}\n"
        f"projects:\n  - id: 42\n    keys: ['{KEY}']\n",
        encoding="utf-8",
    )
    with relay_process(config, port):
        time.sleep(0.2)
        yield port


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed the connection within `seconds` (and what it sent first)."""
    sock.settimeout(seconds)
    received = b""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True, received
            received += data
    except TimeoutError:
        return False, received
    except ConnectionResetError:
        return True, received


def test_half_sent_headers_are_closed(relay: int) -> None:
    with socket.create_connection(("127.0.0.1", relay)) as sock:
        sock.sendall(b"POST /api/42/envelope/ HTTP/1.1\r\nHost: relay\r\n")  # and never the end of the headers
        closed, _ = _closed_within(sock, 5.0)
    assert closed


def test_an_idle_connection_is_closed(relay: int) -> None:
    with socket.create_connection(("127.0.0.1", relay)) as sock:
        closed, _ = _closed_within(sock, 5.0)
    assert closed


def test_a_stalled_body_gets_408_and_is_closed(relay: int) -> None:
    with socket.create_connection(("127.0.0.1", relay)) as sock:
        sock.sendall(
            b"POST /api/42/envelope/ HTTP/1.1\r\nHost: relay\r\nContent-Length: 1000\r\n"
            + f"X-Sentry-Auth: Sentry sentry_key={KEY}\r\n\r\n".encode()
            + b"{}\n"
        )
        started = time.monotonic()
        closed, answer = _closed_within(sock, 10.0)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert closed and time.monotonic() - started < 5.0


def test_connections_past_the_limit_are_closed_and_counted(relay: int) -> None:
    socks = [socket.create_connection(("127.0.0.1", relay)) for _ in range(20)]
    try:
        time.sleep(0.3)
        closed = sum(_closed_within(sock, 0.2)[0] for sock in socks)
        assert closed >= 10, closed  # 8 may stay open (until their idle timeout)
    finally:
        for sock in socks:
            sock.close()
    time.sleep(1.5)  # the rest are closed by their idle timeout too
    with urllib.request.urlopen(f"http://127.0.0.1:{relay}/metrics", timeout=5) as resp:
        metrics = resp.read().decode()
    refused = [line for line in metrics.splitlines() if line.startswith("relay_connections_refused_total ")]
    assert refused and float(refused[0].split()[1]) >= 10
