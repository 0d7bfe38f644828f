"""spool.db deleted or replaced under a running spool: unhealthy, envelopes refused (503, not ready), logged once."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relay.app import create_app
from relay.errors import SpoolFull
from relay.spool import SqliteSpool

from ..conftest import state_of
from ..support import FakeUpstream, auth_header, envelope_bytes, make_config
from .test_sqlite import GatedWriter, entry, make_spool, names

DELETED = "spool file was deleted or replaced"


@pytest.fixture
async def spool(tmp_path: Path) -> AsyncIterator[SqliteSpool]:
    """A started spool in tmp_path/spool, closed afterwards."""
    started = make_spool(tmp_path / "spool")
    await started.start()
    yield started
    await started.close()


def remove_spool_files(directory: Path) -> None:
    """What an operator's `rm spool.db*` does."""
    for name in ("spool.db", "spool.db-wal", "spool.db-shm"):
        (directory / name).unlink(missing_ok=True)


async def test_deleted_file_makes_the_spool_refuse_and_unhealthy(
    tmp_path: Path, spool: SqliteSpool, caplog: pytest.LogCaptureFixture
) -> None:
    """After `rm spool.db*`, push() raises SpoolFull naming the cause, healthy is False, and it is logged once."""
    await spool.push(entry(name="before"))
    assert spool.healthy
    remove_spool_files(tmp_path / "spool")
    with caplog.at_level(logging.ERROR, logger="relay.spool"):
        assert not spool.healthy
        for _ in range(3):
            with pytest.raises(SpoolFull, match=DELETED):
                await spool.push(entry(name="after"))
        assert not spool.healthy
    errors = [r for r in caplog.records if r.name == "relay.spool" and r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "spool file was deleted or replaced: refusing envelopes until the relay restarts"
    ]
    assert spool.pending() == 1
    # What the open file still holds keeps draining (it would be lost only if the relay stopped first).
    taken = await spool.take(5, 0.0)
    assert names(taken) == ["before"]
    await spool.ack(taken)
    assert spool.pending() == 0


async def test_replaced_file_makes_the_spool_unhealthy(tmp_path: Path, spool: SqliteSpool) -> None:
    """A different file renamed over spool.db (a restored copy, say) is caught by its inode."""
    await spool.push(entry(name="before"))
    directory = tmp_path / "spool"
    other = sqlite3.connect(directory / "other.db")
    other.execute("CREATE TABLE t (x)")
    other.close()
    os.replace(directory / "other.db", directory / "spool.db")
    with pytest.raises(SpoolFull, match=DELETED):
        await spool.push(entry(name="after"))
    assert not spool.healthy


async def test_writes_committed_as_the_file_goes_are_refused_and_taken_back(
    tmp_path: Path, spool: SqliteSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pushes already queued when the file is deleted are checked after their commit: refused, and not forwarded."""
    gated = GatedWriter(monkeypatch)
    first = asyncio.create_task(spool.push(entry(name="first")))
    await gated.wait_entered()
    queued = [asyncio.create_task(spool.push(entry(name=f"q{i}"))) for i in range(3)]
    await asyncio.sleep(0.01)
    remove_spool_files(tmp_path / "spool")
    gated.open()
    results = await asyncio.gather(first, *queued, return_exceptions=True)
    assert all(isinstance(r, SpoolFull) and DELETED in str(r) for r in results)
    assert spool.pending() == 0
    waiting = asyncio.create_task(spool.take(10, 0.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # nothing refused is left in the open file to be forwarded
    waiting.cancel()


async def test_deleted_spool_file_answers_503_and_goes_unready(
    tmp_path: Path, aiohttp_client: Any, upstream: FakeUpstream
) -> None:
    """Through the app: after spool.db is deleted, envelopes get 503, /readyz and relay_ready say not ready, and
    the envelope acknowledged before still reaches the upstream."""
    directory = tmp_path / "spool"
    config = make_config(upstream.url, spool=f"{{backend: sqlite, path: '{directory}', fsync: false}}")
    client = await aiohttp_client(create_app(config))
    state = state_of(client)

    def envelope(event_id: str) -> bytes:
        return envelope_bytes({"event_id": event_id}, ({"type": "event"}, b'{"message": "x"}'))

    assert (await client.get("/readyz")).status == 200
    assert (await client.post("/api/42/envelope/", data=envelope("1" * 32), headers=auth_header())).status == 200
    await upstream.wait_for(1, timeout=3.0)

    remove_spool_files(directory)
    refused = await client.post("/api/42/envelope/", data=envelope("2" * 32), headers=auth_header())
    assert refused.status == 503
    assert "Retry-After" in refused.headers
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert await ready.json() == {"status": "not_ready", "is_healthy": False}
    metrics = await (await client.get("/metrics")).text()
    assert "\nrelay_ready 0.0\n" in metrics
    assert state.ready  # the relay itself is up: only the spool is unhealthy
    assert [r.envelope.event_id for r in upstream.received] == ["1" * 32]
