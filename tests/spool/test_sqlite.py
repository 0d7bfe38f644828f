"""The SQLite spool: order, acks and retries, recovery after a restart, max_disk, expiry, group commit, fsync."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import relay.spool.sqlite as sqlite_module
from relay.app import create_app
from relay.clock import Clock, SystemClock
from relay.errors import SpoolFull
from relay.routing import Target
from relay.spool import Entry, SqliteSpool
from relay.spool.writer import Writer

from ..conftest import state_of
from ..support import FakeClock, FakeUpstream, auth_header, envelope_bytes, make_config, outcome_totals

TARGET = Target("https://sentry.example", "1", "k" * 32)


def entry(
    size: int = 10, name: str = "", received_at: float | None = None, categories: tuple[str, ...] = ("error",)
) -> Entry:
    """An entry whose body is `size` bytes, named by its event id, received now (real wall clock) by default."""
    body = (name.encode() + b"x" * size)[:size]
    when = time.time() if received_at is None else received_at
    return Entry(target=TARGET, body=body, categories=categories, received_at=when, event_id=name or None)


def make_spool(
    path: Path,
    *,
    clock: Clock | None = None,
    max_disk: int = 10**9,
    max_age: float = 3600.0,
    fsync: bool = False,
    on_expired: Callable[[list[Entry]], None] | None = None,
) -> SqliteSpool:
    """A SqliteSpool in `path` (not started)."""
    return SqliteSpool(path, max_disk, max_age, fsync, clock or FakeClock(), on_expired)


@pytest.fixture
async def spools(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Open started spools in tmp_path/spool; every one still open at teardown is closed."""
    opened: list[SqliteSpool] = []

    async def open_spool(**kwargs: Any) -> SqliteSpool:
        spool = make_spool(tmp_path / "spool", **kwargs)
        await spool.start()
        opened.append(spool)
        return spool

    yield open_spool
    for spool in opened:
        await spool.close()


def db_rows(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run a query on the spool database through a separate connection."""
    db = sqlite3.connect(tmp_path / "spool" / "spool.db")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


async def filled(spool: SqliteSpool, count: int, size: int = 10) -> list[Entry]:
    """Push `count` entries named e0, e1, ... and return them."""
    entries = [entry(size, f"e{i}") for i in range(count)]
    for e in entries:
        await spool.push(e)
    return entries


def names(entries: list[Entry]) -> list[str | None]:
    """The event ids of entries, in order."""
    return [e.event_id for e in entries]


class GatedWriter:
    """Holds the writer thread inside its first transaction until `open()`, so operations pile up behind it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.groups: list[list[str]] = []
        self.gate = threading.Event()
        self.entered = threading.Event()
        real = Writer.run_group

        def run_group(writer: Writer, db: sqlite3.Connection, group: list[Any]) -> None:
            self.groups.append([op.kind for op in group])
            if len(self.groups) == 1:
                self.entered.set()
                self.gate.wait(10)
            real(writer, db, group)

        monkeypatch.setattr(Writer, "run_group", run_group)

    async def wait_entered(self) -> None:
        """Wait until the writer is stuck in its first transaction."""
        assert await asyncio.to_thread(self.entered.wait, 5)

    def open(self) -> None:
        """Let the writer go on."""
        self.gate.set()


# -- push, take, ack, retry ----------------------------------------------------------


async def test_take_returns_oldest_first_in_batches(spools: Any) -> None:
    """take() returns at most max_entries, oldest first; the rest come in the next batch; taken is still held."""
    spool = await spools()
    await filled(spool, 5)
    first = await spool.take(3, 0.0)
    second = await spool.take(3, 0.0)
    assert names(first) == ["e0", "e1", "e2"]
    assert names(second) == ["e3", "e4"]
    assert spool.pending() == 5
    assert spool.pending_bytes() == 50


async def test_push_assigns_increasing_ids_and_entries_round_trip(spools: Any) -> None:
    """Every field of an entry survives the database, and ids grow with each push."""
    spool = await spools()
    original = Entry(
        target=Target("https://o1.ingest.example", "4501", "f" * 32),
        body=b"\x00binary\nbody\xff",
        categories=("error", "attachment"),
        received_at=1_700_000_123.25,
        event_id="a" * 32,
        client="sentry.python/2.0",
        client_reports_only=True,
        attempts=2,
    )
    await spool.push(original)
    other = entry(name="later")
    await spool.push(other)
    assert 0 < original.id < other.id
    taken = await spool.take(1, 0.0)
    assert taken == [original]


async def test_ack_deletes_from_disk_and_frees_counters(tmp_path: Path, spools: Any) -> None:
    """Acked entries leave the database and the counters; the rest stay and can still be taken."""
    spool = await spools()
    await filled(spool, 3, size=7)
    batch = await spool.take(2, 0.0)
    await spool.ack(batch)
    assert spool.pending() == 1
    assert spool.pending_bytes() == 7
    assert spool.drained == 2
    assert db_rows(tmp_path, "SELECT event_id FROM entries") == [("e2",)]
    assert names(await spool.take(5, 0.0)) == ["e2"]


async def test_taken_entries_are_not_taken_again(spools: Any) -> None:
    """An entry in flight is never handed out twice, however often take() is called."""
    spool = await spools()
    await filled(spool, 4)
    seen = [e.event_id for _ in range(4) for e in await spool.take(1, 0.0)]
    assert seen == ["e0", "e1", "e2", "e3"]
    await spool.push(entry(name="e4"))
    assert names(await spool.take(10, 0.0)) == ["e4"]


async def test_retry_delays_an_entry_on_the_clock(spools: Any) -> None:
    """A retried entry is not due until its delay has passed on the clock; its attempts are stored."""
    clock = FakeClock()
    spool = await spools(clock=clock)
    (e,) = await filled(spool, 1)
    assert await spool.take(1, 0.0) == [e]
    e.attempts = 3
    await spool.retry(e, 5.0)
    await spool.push(entry(name="fresh"))
    assert names(await spool.take(5, 0.0)) == ["fresh"]
    clock.advance(5.0)
    (again,) = await spool.take(5, 0.0)
    assert again.event_id == "e0"
    assert again.attempts == 3
    assert spool.pending() == 2


async def test_due_retries_come_back_oldest_first(spools: Any) -> None:
    """Entries due again come back in the order they were received, not the order their delays end."""
    clock = FakeClock()
    spool = await spools(clock=clock)
    await filled(spool, 3)
    a, b, c = await spool.take(3, 0.0)
    await spool.retry(c, 1.0)
    await spool.retry(a, 3.0)
    await spool.retry(b, 2.0)
    clock.advance(3.0)
    assert names(await spool.take(3, 0.0)) == ["e0", "e1", "e2"]


async def test_release_delayed_makes_every_entry_due(spools: Any) -> None:
    """release_delayed() wakes a waiting take() and hands out entries whose delays have not ended."""
    spool = await spools(clock=FakeClock())
    await filled(spool, 2)
    a, b = await spool.take(2, 0.0)
    await spool.retry(a, 600.0)
    await spool.retry(b, 300.0)
    waiting = asyncio.create_task(spool.take(5, 0.0))
    await asyncio.sleep(0.02)
    assert not waiting.done()
    await spool.release_delayed()
    assert names(await asyncio.wait_for(waiting, 1.0)) == ["e0", "e1"]


async def test_take_waits_for_a_push(spools: Any) -> None:
    """take() blocks on an empty spool and returns as soon as something is pushed."""
    spool = await spools(clock=SystemClock())
    task = asyncio.create_task(spool.take(5, 0.0))
    await asyncio.sleep(0.02)
    assert not task.done()
    await spool.push(entry(name="late"))
    assert names(await asyncio.wait_for(task, 1.0)) == ["late"]


async def test_take_wakes_when_a_retry_is_due(spools: Any) -> None:
    """A take() that is waiting returns once a delayed entry becomes due (real clock, 50ms)."""
    spool = await spools(clock=SystemClock())
    (e,) = await filled(spool, 1)
    await spool.take(1, 0.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await spool.retry(e, 0.05)
    assert names(await asyncio.wait_for(spool.take(1, 0.0), 1.0)) == ["e0"]
    assert loop.time() - started >= 0.045


async def test_take_lingers_to_fill_a_batch(spools: Any) -> None:
    """With linger, an entry pushed during the linger joins the batch."""
    clock = FakeClock()
    spool = await spools(clock=clock)
    await spool.push(entry(name="a"))
    real_sleep = clock.sleep

    async def sleep_and_push(seconds: float) -> None:
        await real_sleep(seconds)
        await spool.push(entry(name="b"))

    clock.sleep = sleep_and_push  # type: ignore[method-assign]
    assert names(await spool.take(5, 0.5)) == ["a", "b"]


async def test_waiting_take_does_not_poll_while_entries_are_in_flight(
    spools: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one entry in flight and nothing due, a waiting take() sleeps instead of querying in a loop."""
    spool = await spools(clock=SystemClock())
    await filled(spool, 1)
    assert names(await spool.take(1, 0.0)) == ["e0"]
    selects: list[object] = []
    real_select = sqlite_module._OPERATIONS["select"]

    def counting_select(db: sqlite3.Connection, args: Any) -> Any:
        selects.append(args)
        return real_select(db, args)

    monkeypatch.setitem(sqlite_module._OPERATIONS, "select", counting_select)
    waiting = asyncio.create_task(spool.take(1, 0.0))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    waiting.cancel()
    assert len(selects) == 1, f"take() ran {len(selects)} SELECTs in 200 ms while waiting"


# -- restart ---------------------------------------------------------------------------


async def test_restart_recovers_entries_and_makes_them_due(tmp_path: Path, spools: Any) -> None:
    """Close with entries waiting, in flight and delayed; reopen the same path: all are held and due at once."""
    clock = FakeClock()
    spool = await spools(clock=clock)
    await filled(spool, 4, size=12)
    _in_flight, delayed, acked = await spool.take(3, 0.0)
    delayed.attempts = 2
    await spool.retry(delayed, 3600.0)
    await spool.ack([acked])
    assert await spool.close() == []

    reopened = await spools(clock=clock)
    assert reopened.pending() == 3
    assert reopened.pending_bytes() == 36
    recovered = await asyncio.wait_for(reopened.take(10, 0.0), 1.0)
    assert names(recovered) == ["e0", "e1", "e3"]  # e3 was waiting, e0 in flight, e1 delayed an hour
    assert [e.attempts for e in recovered] == [0, 2, 0]
    await reopened.ack(recovered)
    assert reopened.pending() == 0
    assert db_rows(tmp_path, "SELECT COUNT(*) FROM entries") == [(0,)]


async def test_restart_keeps_max_disk_accounting(spools: Any) -> None:
    """Bytes recovered at start count against max_disk."""
    spool = await spools(max_disk=100)
    await spool.push(entry(60))
    await spool.close()
    reopened = await spools(max_disk=100)
    assert reopened.pending_bytes() == 60
    with pytest.raises(SpoolFull):
        await reopened.push(entry(41))
    await reopened.push(entry(40))


async def test_restart_logs_recovery(spools: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Reopening a non-empty spool logs how much it recovered."""
    spool = await spools()
    await filled(spool, 2, size=5)
    await spool.close()
    with caplog.at_level("INFO", logger="relay.spool"):
        await spools()
    assert [r.getMessage() for r in caplog.records if r.name == "relay.spool"] == ["spool recovered"]


async def test_closed_spool_refuses_pushes(spools: Any) -> None:
    """After close() a push raises SpoolFull; close() is idempotent and hands nothing back."""
    spool = await spools()
    await filled(spool, 1)
    assert await spool.close() == []
    assert await spool.close() == []
    with pytest.raises(SpoolFull):
        await spool.push(entry())


# -- bounds ------------------------------------------------------------------------------


async def test_max_disk_raises_spool_full(spools: Any) -> None:
    """Pushing past max_disk raises SpoolFull and changes nothing; filling exactly to the bound is allowed."""
    spool = await spools(max_disk=100)
    await spool.push(entry(60))
    with pytest.raises(SpoolFull):
        await spool.push(entry(41))
    assert spool.pending() == 1
    await spool.push(entry(40))
    assert spool.pending_bytes() == 100
    with pytest.raises(SpoolFull):
        await spool.push(entry(1))
    (first, _) = await spool.take(2, 0.0)
    await spool.ack([first])
    await spool.push(entry(60))
    assert spool.pending_bytes() == 100


async def test_single_entry_over_max_disk_is_refused(spools: Any) -> None:
    """An entry larger than max_disk is refused even when the spool is empty."""
    spool = await spools(max_disk=50)
    with pytest.raises(SpoolFull):
        await spool.push(entry(51))
    assert spool.pending() == 0
    assert spool.pending_bytes() == 0


async def test_take_is_bounded_and_counters_match_the_database(tmp_path: Path, spools: Any) -> None:
    """With 500 entries held, take() never returns more than asked, and pending() agrees with the database."""
    spool = await spools()
    await filled(spool, 500, size=20)
    held: list[Entry] = []
    for _ in range(7):
        batch = await spool.take(25, 0.0)
        assert len(batch) == 25
        held += batch
    assert len({e.id for e in held}) == 175
    await spool.ack(held[:100])
    assert spool.pending() == 400
    assert spool.pending_bytes() == 8000
    assert db_rows(tmp_path, "SELECT COUNT(*), SUM(size) FROM entries") == [(400, 8000)]


async def test_failed_write_is_refused_and_not_counted(spools: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """When SQLite fails an insert, push() raises SpoolFull and the counters are unchanged."""
    spool = await spools()
    await filled(spool, 1)

    def failing_insert(db: sqlite3.Connection, e: Entry) -> int:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setitem(sqlite_module._OPERATIONS, "insert", failing_insert)
    with pytest.raises(SpoolFull):
        await spool.push(entry(name="refused"))
    assert spool.pending() == 1
    assert spool.pending_bytes() == 10


async def test_failed_write_does_not_fail_other_operations_in_its_transaction(
    spools: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An insert that fails takes only itself down: a good push and a take grouped with it still succeed."""
    spool = await spools()
    await filled(spool, 1)
    assert names(await spool.take(1, 0.0)) == ["e0"]  # in flight; the first take() also ran the expiry check
    real_insert = sqlite_module._OPERATIONS["insert"]

    def insert(db: sqlite3.Connection, e: Entry) -> int:
        if e.event_id == "bad":
            raise sqlite3.OperationalError("database or disk is full")
        return real_insert(db, e)

    monkeypatch.setitem(sqlite_module._OPERATIONS, "insert", insert)
    gated = GatedWriter(monkeypatch)
    blocker = asyncio.create_task(spool.push(entry(name="blocker")))
    await gated.wait_entered()
    bad = asyncio.create_task(spool.push(entry(name="bad")))
    good = asyncio.create_task(spool.push(entry(name="good")))
    take = asyncio.create_task(spool.take(5, 0.0))
    await asyncio.sleep(0.01)
    gated.open()
    await blocker
    with pytest.raises(SpoolFull):
        await bad
    await good
    assert gated.groups[1] == ["insert", "insert", "select"]
    assert names(await asyncio.wait_for(take, 1.0)) == ["blocker", "good"]
    assert spool.pending() == 3


# -- expiry -------------------------------------------------------------------------------


async def test_expiry_drops_entries_older_than_max_age(tmp_path: Path, spools: Any) -> None:
    """take() drops entries older than max_age: on_expired gets them (categories only), counters shrink."""
    clock = FakeClock()
    expired: list[list[Entry]] = []
    spool = await spools(clock=clock, max_age=60.0, on_expired=expired.append)
    await spool.push(entry(11, "old", received_at=clock.time(), categories=("error", "attachment")))
    clock.advance(30)
    await spool.push(entry(13, "young", received_at=clock.time()))
    clock.advance(31)
    assert await spool.oldest_age() == pytest.approx(61.0)
    assert names(await spool.take(5, 0.0)) == ["young"]
    assert [[e.categories for e in batch] for batch in expired] == [[("error", "attachment")]]
    assert spool.pending() == 1
    assert spool.pending_bytes() == 13
    assert await spool.oldest_age() == pytest.approx(31.0)
    assert db_rows(tmp_path, "SELECT event_id FROM entries") == [("young",)]


async def test_expiry_runs_at_most_every_interval(spools: Any) -> None:
    """Expiry is checked once per expiry interval of clock time, not on every take()."""
    clock = FakeClock()
    expired: list[list[Entry]] = []
    spool = await spools(clock=clock, max_age=5.0, on_expired=expired.append)
    await spool.push(entry(name="a", received_at=clock.time()))
    await spool.ack(await spool.take(1, 0.0))  # the first take() checks expiry and schedules the next check
    clock.advance(6.0)
    await spool.push(entry(name="b", received_at=clock.time() - 6.0))
    (b,) = await spool.take(1, 0.0)  # b is past max_age, but the next check is not due yet
    assert b.event_id == "b"
    assert expired == []
    await spool.retry(b, 0.0)
    clock.advance(sqlite_module._EXPIRY_INTERVAL)
    await spool.push(entry(name="c", received_at=clock.time()))
    assert names(await spool.take(5, 0.0)) == ["c"]
    assert [[e.categories for e in batch] for batch in expired] == [[("error",)]]
    assert spool.pending() == 1


async def test_in_flight_entry_expires_once_retried(spools: Any) -> None:
    """An entry past max_age is spared while in flight and dropped at the first expiry after its retry."""
    clock = FakeClock()
    expired: list[list[Entry]] = []
    spool = await spools(clock=clock, max_age=60.0, on_expired=expired.append)
    await spool.push(entry(name="slow", received_at=clock.time()))
    (slow,) = await spool.take(1, 0.0)
    clock.advance(120)
    await spool.push(entry(name="fresh", received_at=clock.time()))
    assert names(await spool.take(5, 0.0)) == ["fresh"]
    assert expired == []
    await spool.retry(slow, 0.0)
    clock.advance(sqlite_module._EXPIRY_INTERVAL)
    await spool.push(entry(name="fresh2", received_at=clock.time()))
    assert names(await spool.take(5, 0.0)) == ["fresh2"]
    assert [[e.categories for e in batch] for batch in expired] == [[("error",)]]
    assert spool.pending() == 2


async def test_max_age_zero_never_expires(spools: Any) -> None:
    """max_age 0 keeps entries however old they are."""
    clock = FakeClock()
    expired: list[list[Entry]] = []
    spool = await spools(clock=clock, max_age=0.0, on_expired=expired.append)
    await spool.push(entry(name="ancient", received_at=clock.time()))
    clock.advance(10 * 365 * 86400)
    assert names(await spool.take(1, 0.0)) == ["ancient"]
    assert expired == []


# -- group commit and fsync ------------------------------------------------------------------


async def test_concurrent_pushes_share_transactions(spools: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """200 pushes queued while the writer commits go to disk in one transaction, not 200."""
    spool = await spools()
    inserts: list[str | None] = []
    real_insert = sqlite_module._OPERATIONS["insert"]

    def recording_insert(db: sqlite3.Connection, e: Entry) -> int:
        inserts.append(e.event_id)
        return real_insert(db, e)

    monkeypatch.setitem(sqlite_module._OPERATIONS, "insert", recording_insert)
    gated = GatedWriter(monkeypatch)
    first = asyncio.create_task(spool.push(entry(name="first")))
    await gated.wait_entered()
    pushes = [asyncio.create_task(spool.push(entry(name=f"p{i}"))) for i in range(200)]
    await asyncio.sleep(0.01)
    gated.open()
    await asyncio.gather(first, *pushes)
    assert len(inserts) == 201
    assert [len(g) for g in gated.groups] == [1, 200]
    assert spool.pending() == 201


async def test_group_size_is_capped(spools: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backlog of operations is split into transactions of at most 1024."""
    spool = await spools()
    gated = GatedWriter(monkeypatch)
    first = asyncio.create_task(spool.push(entry(name="first")))
    await gated.wait_entered()
    pushes = [asyncio.create_task(spool.push(entry(1))) for _ in range(1500)]
    await asyncio.sleep(0.05)
    gated.open()
    await asyncio.gather(first, *pushes)
    assert [len(g) for g in gated.groups] == [1, 1024, 476]
    assert spool.pending() == 1501


async def test_push_is_on_disk_when_it_returns(tmp_path: Path, spools: Any) -> None:
    """Once push() returns, a separate connection sees the entry (it is committed)."""
    spool = await spools()
    await spool.push(entry(name="durable"))
    assert db_rows(tmp_path, "SELECT event_id FROM entries") == [("durable",)]


@pytest.mark.parametrize(("fsync", "synchronous"), [(True, 2), (False, 1)])
async def test_fsync_sets_synchronous(
    tmp_path: Path, spools: Any, monkeypatch: pytest.MonkeyPatch, fsync: bool, synchronous: int
) -> None:
    """fsync true runs the writer with synchronous=FULL (2), false with NORMAL (1); the file is in WAL mode."""
    monkeypatch.setitem(
        sqlite_module._OPERATIONS, "pragma", lambda db, name: db.execute(f"PRAGMA {name}").fetchone()[0]
    )
    spool = await spools(fsync=fsync)
    assert await spool._call("pragma", "synchronous") == synchronous
    assert db_rows(tmp_path, "PRAGMA journal_mode") == [("wal",)]


# -- through the app ---------------------------------------------------------------------------


async def test_transient_database_error_does_not_stop_forwarding(
    tmp_path: Path, aiohttp_client: Any, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One failed SELECT in take() (a transient SQLite error) does not kill the forwarder: envelopes still flow."""
    config = make_config(upstream.url, spool=f"{{backend: sqlite, path: '{tmp_path / 'spool'}', fsync: false}}")
    client = await aiohttp_client(create_app(config))
    state = state_of(client)
    real_select = sqlite_module._OPERATIONS["select"]
    failures: list[str] = []

    def select_failing_once(db: sqlite3.Connection, args: Any) -> Any:
        rows = real_select(db, args)
        if rows and not failures:  # the first SELECT that finds the envelope fails
            failures.append("select")
            raise sqlite3.OperationalError("database is locked")
        return rows

    monkeypatch.setitem(sqlite_module._OPERATIONS, "select", select_failing_once)
    body = envelope_bytes({"event_id": "1" * 32}, ({"type": "event"}, b'{"message": "x"}'))
    response = await client.post("/api/42/envelope/", data=body, headers=auth_header())
    assert response.status == 200
    await upstream.wait_for(1, timeout=3.0)
    deadline = asyncio.get_running_loop().time() + 3.0
    while state.spool.pending():  # the 200 is in; the ack follows
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.005)
    assert failures == ["select"]
    assert [r.envelope.event_id for r in upstream.received] == ["1" * 32]
    assert outcome_totals(state) == {("forwarded", "none", "error"): 1}
