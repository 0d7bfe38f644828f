"""A client that goes away mid-body, over a real TCP socket: counted as a client abort, never a 500 or an ERROR."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner

from relay.app import create_app

from ..conftest import state_of
from ..support import KEY, PROJECT, FakeUpstream, make_config, outcome_totals, received_total

BODY_START = b'{"event_id": "' + b"a" * 32 + b'"}\n{"type": "event", "length": 5000}\n{"message": "'


class RunServer(TestServer):
    """A test server that, like `relay run`, lets a handler finish when its client disconnects (aiohttp's test
    server cancels it instead)."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        kwargs["handler_cancellation"] = False
        return await super()._make_runner(**kwargs)


def requests_by_status(client: TestClient[Any, Any]) -> dict[tuple[str, str], float]:
    """relay_requests_total as {(endpoint, status): count}."""
    return {
        (s.labels["endpoint"], s.labels["status"]): s.value
        for m in state_of(client).metrics.requests.collect()
        for s in m.samples
        if s.name.endswith("_total")
    }


async def send_part_and_hang_up(client: TestClient[Any, Any], path: str, *, reset: bool) -> None:
    """Send headers announcing 10,000 bytes and the first few hundred of them, then close (or reset) the socket."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: relay\r\nContent-Type: application/x-sentry-envelope\r\n"
        f"X-Sentry-Auth: Sentry sentry_version=7, sentry_key={KEY}, sentry_client=test/1.0\r\n"
        "Content-Length: 10000\r\n\r\n"
    )
    writer.write(head.encode() + BODY_START + b"m" * 300)
    await writer.drain()
    await asyncio.sleep(0.05)  # let the relay start reading the body
    if reset:  # an RST instead of a FIN
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
    await writer.wait_closed()
    assert reader.at_eof() or not await reader.read()  # no answer was ever sent


async def wait_for_count(client: TestClient[Any, Any], key: tuple[str, str]) -> None:
    """Wait until relay_requests_total has counted one request with these labels."""
    for _ in range(500):
        if requests_by_status(client).get(key):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no request counted as {key}: {requests_by_status(client)}")


@pytest.mark.parametrize(
    ("path", "endpoint", "reset"),
    [
        (f"/api/{PROJECT}/envelope/", "envelope", False),
        (f"/api/{PROJECT}/envelope/", "envelope", True),
        (f"/api/{PROJECT}/store/", "store", False),
    ],
)
async def test_disconnect_mid_body_is_a_client_abort(
    aiohttp_client: Any,
    upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    path: str,
    endpoint: str,
    reset: bool,
) -> None:
    """Part of a body, then a closed socket: relay_requests_total{status="client_abort"}, a DEBUG line, no ERROR."""
    client = await aiohttp_client(RunServer(create_app(make_config(upstream.url))))
    with caplog.at_level(logging.DEBUG):
        await send_part_and_hang_up(client, path, reset=reset)
        await wait_for_count(client, (endpoint, "client_abort"))
    assert requests_by_status(client) == {(endpoint, "client_abort"): 1}
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    aborts = [r for r in caplog.records if r.getMessage() == "client disconnected mid-body"]
    assert [(r.levelno, r.__dict__["endpoint"], r.__dict__["expected"], r.exc_info) for r in aborts] == [
        (logging.DEBUG, endpoint, 10000, None)
    ]
    assert 0 < aborts[0].__dict__["received"] < 10000
    state = state_of(client)
    assert received_total(state) == 0 and outcome_totals(state) == {}  # no envelope was read: no items
    assert upstream.attempts == []
    resp = await client.get("/healthz")  # the relay is fine
    assert resp.status == 200
