"""The in-memory spool: bounds, batches, delayed retries, acks and close; and a full queue seen over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relay.app import create_app
from relay.clock import SystemClock
from relay.errors import SpoolFull
from relay.routing import Target
from relay.spool import Entry, MemorySpool

from ..conftest import state_of
from ..support import (
    FakeClock,
    FakeUpstream,
    Reply,
    auth_header,
    envelope_bytes,
    make_config,
    outcome_totals,
    received_total,
)

TARGET = Target("https://sentry.example", "1", "k" * 32)


def entry(size: int = 10, name: str = "") -> Entry:
    """An entry whose body is `size` bytes."""
    body = (name.encode() + b"x" * size)[:size]
    return Entry(target=TARGET, body=body, categories=("error",), received_at=0.0, event_id=name or None)


async def filled(spool: MemorySpool, count: int, size: int = 10) -> list[Entry]:
    """Push `count` entries and return them."""
    entries = [entry(size, f"e{i}") for i in range(count)]
    for e in entries:
        await spool.push(e)
    return entries


# -- bounds ------------------------------------------------------------------------------


async def test_count_bound_raises_spool_full() -> None:
    """Pushing past max_entries raises SpoolFull and leaves the spool unchanged."""
    spool = MemorySpool(max_entries=2, max_bytes=10_000, clock=FakeClock())
    await filled(spool, 2)
    with pytest.raises(SpoolFull):
        await spool.push(entry())
    assert spool.pending() == 2
    assert spool.pending_bytes() == 20


async def test_byte_bound_raises_spool_full() -> None:
    """Pushing past max_bytes raises SpoolFull; filling exactly to the bound is allowed."""
    spool = MemorySpool(max_entries=100, max_bytes=100, clock=FakeClock())
    await spool.push(entry(60))
    with pytest.raises(SpoolFull):
        await spool.push(entry(41))
    await spool.push(entry(40))
    assert spool.pending_bytes() == 100
    with pytest.raises(SpoolFull):
        await spool.push(entry(1))


async def test_single_entry_over_byte_bound_is_refused() -> None:
    """An entry larger than the whole byte bound is refused even when the spool is empty."""
    spool = MemorySpool(max_entries=100, max_bytes=50, clock=FakeClock())
    with pytest.raises(SpoolFull):
        await spool.push(entry(51))
    assert spool.pending() == 0


async def test_push_assigns_distinct_ids() -> None:
    """Every pushed entry gets its own id."""
    spool = MemorySpool(max_entries=10, max_bytes=10_000, clock=FakeClock())
    entries = await filled(spool, 3)
    assert len({e.id for e in entries}) == 3
    assert all(e.id > 0 for e in entries)


# -- take ---------------------------------------------------------------------------------


async def test_take_returns_batches_up_to_max_in_order() -> None:
    """take() returns at most max_entries, oldest first; the rest come in the next batch."""
    spool = MemorySpool(max_entries=10, max_bytes=10_000, clock=FakeClock())
    entries = await filled(spool, 5)
    first = await spool.take(3, 0.0)
    second = await spool.take(3, 0.0)
    assert first == entries[:3]
    assert second == entries[3:]
    assert spool.pending() == 5  # taken is not settled: in flight still counts


async def test_take_waits_for_a_push() -> None:
    """take() blocks on an empty spool and returns as soon as something is pushed."""
    spool = MemorySpool(max_entries=10, max_bytes=10_000, clock=SystemClock())
    task = asyncio.create_task(spool.take(5, 0.0))
    await asyncio.sleep(0.02)
    assert not task.done()
    pushed = entry(name="late")
    await spool.push(pushed)
    assert await asyncio.wait_for(task, 1.0) == [pushed]


async def test_take_lingers_to_fill_a_batch() -> None:
    """With linger, entries pushed during the linger join the batch."""
    clock = FakeClock()
    spool = MemorySpool(max_entries=10, max_bytes=10_000, clock=clock)
    first = entry(name="a")
    await spool.push(first)
    started = clock.now
    take = asyncio.create_task(spool.take(5, 0.5))
    await asyncio.sleep(0)  # let take() find the first entry and start lingering
    assert not take.done()
    assert clock.now - started == pytest.approx(0.5)
    late = entry(name="b")
    await spool.push(late)
    assert await take == [first, late]


async def test_take_skips_linger_when_batch_is_full() -> None:
    """A full batch is returned without lingering."""
    clock = FakeClock()
    spool = MemorySpool(max_entries=10, max_bytes=10_000, clock=clock)
    await filled(spool, 3)
    before = clock.now
    assert len(await spool.take(3, 5.0)) == 3
    assert clock.now == before


# -- retry, ack, close ------------------------------------------------------------------------


async def test_retry_delays_an_entry() -> None:
    """A retried entry is not ready until its delay has passed on the clock, but is still held."""
    clock = FakeClock()
    spool = MemorySpool(max_entries=10, max_bytes=10_000, clock=clock)
    (e,) = await filled(spool, 1)
    assert await spool.take(1, 0.0) == [e]
    await spool.retry(e, 5.0)
    assert spool.ready_now() == 0
    assert spool.pending() == 1
    clock.advance(4.9)
    assert spool.ready_now() == 0
    clock.advance(0.1)
    assert spool.ready_now() == 1
    assert await spool.take(1, 0.0) == [e]


async def test_retries_become_ready_in_due_order() -> None:
    """Delayed entries come back in the order their delays end, not the order they were retried."""
    clock = FakeClock()
    spool = MemorySpool(max_entries=10, max_bytes=10_000, clock=clock)
    a, b, c = await filled(spool, 3)
    await spool.take(3, 0.0)
    await spool.retry(a, 3.0)
    await spool.retry(b, 1.0)
    await spool.retry(c, 2.0)
    clock.advance(3.0)
    assert await spool.take(3, 0.0) == [b, c, a]


async def test_take_wakes_when_a_retry_is_due() -> None:
    """A take() that is waiting returns once a delayed entry becomes due (real clock, 50ms)."""
    spool = MemorySpool(max_entries=10, max_bytes=10_000, clock=SystemClock())
    (e,) = await filled(spool, 1)
    await spool.take(1, 0.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await spool.retry(e, 0.05)
    assert await asyncio.wait_for(spool.take(1, 0.0), 1.0) == [e]
    assert loop.time() - started >= 0.045


async def test_take_sees_a_retry_scheduled_while_waiting() -> None:
    """A take() already blocked on an empty spool notices a retry scheduled meanwhile."""
    spool = MemorySpool(max_entries=10, max_bytes=10_000, clock=SystemClock())
    (e,) = await filled(spool, 1)
    await spool.take(1, 0.0)
    task = asyncio.create_task(spool.take(1, 0.0))
    await asyncio.sleep(0.01)
    await spool.retry(e, 0.03)
    assert await asyncio.wait_for(task, 1.0) == [e]


async def test_ack_frees_count_and_bytes() -> None:
    """Acked entries stop counting against both bounds, and acking twice is harmless."""
    spool = MemorySpool(max_entries=2, max_bytes=25, clock=FakeClock())
    a, _ = await filled(spool, 2)
    assert spool.pending_bytes() == 20
    await spool.ack([a])
    await spool.ack([a])
    assert spool.pending() == 1
    assert spool.pending_bytes() == 10
    await spool.push(entry(15))
    assert spool.pending_bytes() == 25


async def test_acked_entry_is_not_retried() -> None:
    """Retrying an entry that was already acked does nothing; acking a delayed entry cancels it."""
    clock = FakeClock()
    spool = MemorySpool(max_entries=10, max_bytes=10_000, clock=clock)
    a, b = await filled(spool, 2)
    await spool.take(2, 0.0)
    await spool.ack([a])
    await spool.retry(a, 0.0)
    await spool.retry(b, 1.0)
    await spool.ack([b])
    clock.advance(2.0)
    assert spool.ready_now() == 0
    assert spool.pending() == 0


async def test_close_returns_every_held_entry() -> None:
    """close() hands back ready, delayed and in-flight entries, and the spool then refuses pushes."""
    clock = FakeClock()
    spool = MemorySpool(max_entries=10, max_bytes=10_000, clock=clock)
    in_flight, delayed, acked = await filled(spool, 3)
    await spool.take(3, 0.0)
    await spool.retry(delayed, 60.0)
    await spool.ack([acked])
    ready = entry(name="ready")
    await spool.push(ready)
    lost = await spool.close()
    assert sorted(e.id for e in lost) == sorted(e.id for e in (in_flight, delayed, ready))
    assert spool.pending() == 0
    assert spool.pending_bytes() == 0
    with pytest.raises(SpoolFull):
        await spool.push(entry())


# -- a full queue over HTTP -------------------------------------------------------------------


async def test_full_queue_answers_503(aiohttp_client: Any, upstream: FakeUpstream) -> None:
    """With queue.max_envelopes 1 and a slow upstream, a second envelope gets 503 + Retry-After + JSON detail."""
    upstream.script = [Reply(200, delay=0.3)]
    config = make_config(upstream.url, "queue: {max_envelopes: 1}")
    client = await aiohttp_client(create_app(config))
    state = state_of(client)

    def body(event_id: str) -> bytes:
        return envelope_bytes({"event_id": event_id}, ({"type": "event"}, b'{"message": "x"}'))

    first = await client.post("/api/42/envelope/", data=body("1" * 32), headers=auth_header())
    assert first.status == 200
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 2
    while not upstream.attempts:  # the first envelope is now in flight, still held by the spool
        assert loop.time() < deadline
        await asyncio.sleep(0.005)
    assert state.spool.pending() == 1

    second = await client.post("/api/42/envelope/", data=body("2" * 32), headers=auth_header())
    assert second.status == 503
    assert int(second.headers["Retry-After"]) > 0
    assert second.content_type == "application/json"
    detail = (await second.json())["detail"]
    assert "queue" in detail
    assert outcome_totals(state) == {("dropped", "queue_overflow", "error"): 1}

    await upstream.wait_for(1)
    deadline = loop.time() + 2
    while state.spool.pending():
        assert loop.time() < deadline
        await asyncio.sleep(0.005)
    assert [r.envelope.event_id for r in upstream.received] == ["1" * 32]
    totals = {k: v for k, v in outcome_totals(state).items() if v}
    assert totals == {("dropped", "queue_overflow", "error"): 1, ("forwarded", "none", "error"): 1}
    assert received_total(state) == sum(totals.values()) == 2

    third = await client.post("/api/42/envelope/", data=body("3" * 32), headers=auth_header())
    assert third.status == 200  # room again once the first was delivered
    await upstream.wait_for(2)
