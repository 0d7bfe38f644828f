"""Wall-clock steps under a running spool: ages and retries follow the monotonic clock; stored times stay sane."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from relay.spool import Entry, SqliteSpool

from ..support import FakeClock
from .test_sqlite import db_rows, entry, names

HOUR = 3600.0


class SteppingClock(FakeClock):
    """A fake clock whose wall time can be stepped while monotonic time runs on."""

    def __init__(self) -> None:
        super().__init__()
        self.wall_step = 0.0

    def time(self) -> float:
        """The fake wall clock, stepped by `wall_step`."""
        return super().time() + self.wall_step


async def started(
    path: Path, clock: SteppingClock, *, max_age: float = 24 * HOUR, expired: list[list[Entry]] | None = None
) -> SqliteSpool:
    """A started SqliteSpool in `path`; what expires is appended to `expired`."""
    spool = SqliteSpool(path, 10**9, max_age, False, clock, None if expired is None else expired.append)
    await spool.start()
    return spool


async def take_now(spool: SqliteSpool, max_entries: int = 100) -> list[Entry]:
    """What take() hands out right away (expiry runs first); [] when it would wait."""
    try:
        return await asyncio.wait_for(spool.take(max_entries, 0.0), 0.05)
    except TimeoutError:
        return []


async def test_forward_step_expires_nothing_early(tmp_path: Path) -> None:
    """A +25 h step with max_age 24 h: all 100 entries are still handed out; they expire 24 h of monotonic time on."""
    clock = SteppingClock()
    expired: list[list[Entry]] = []
    spool = await started(tmp_path / "spool", clock, expired=expired)
    try:
        for i in range(100):
            await spool.push(entry(name=f"e{i}", received_at=clock.time()))
        clock.advance(60)
        clock.wall_step = 25 * HOUR
        assert await spool.oldest_age() == pytest.approx(60)
        batch = await take_now(spool)
        assert len(batch) == 100 and expired == []
        # What the forwarder computes for max_elapsed (wall now - received_at) is the true age, not 25 h.
        assert {round(clock.time() - e.received_at) for e in batch} == {60}
        for e in batch:
            await spool.retry(e, 0.0)
        clock.advance(24 * HOUR - 60 - 20)
        assert len(await take_now(spool)) == 100 and expired == []
        for e in batch:
            await spool.retry(e, 0.0)
        clock.advance(20 + 11)  # past max_age, and past the next expiry check
        assert await take_now(spool) == []
        assert sum(len(x) for x in expired) == 100
    finally:
        await spool.close()


async def test_backward_step_keeps_retries_due_on_time(tmp_path: Path) -> None:
    """A -2 h step: an entry retried in 30 s is due 30 s of monotonic time later, not 2 h later."""
    clock = SteppingClock()
    spool = await started(tmp_path / "spool", clock)
    try:
        await spool.push(entry(name="a", received_at=clock.time()))
        (a,) = await spool.take(1, 0.0)
        await spool.retry(a, 30.0)
        clock.wall_step = -2 * HOUR
        clock.advance(30.0)
        assert names(await asyncio.wait_for(spool.take(1, 0.0), 1.0)) == ["a"]
    finally:
        await spool.close()


async def test_forward_step_does_not_make_retries_due_early(tmp_path: Path) -> None:
    """A +2 h step: an entry retried in 1 h is not due until 1 h of monotonic time has passed."""
    clock = SteppingClock()
    spool = await started(tmp_path / "spool", clock)
    try:
        await spool.push(entry(name="a", received_at=clock.time()))
        (a,) = await spool.take(1, 0.0)
        await spool.retry(a, HOUR)
        clock.wall_step = 2 * HOUR
        assert await take_now(spool) == []
        clock.advance(HOUR)
        assert names(await asyncio.wait_for(spool.take(1, 0.0), 1.0)) == ["a"]
    finally:
        await spool.close()


async def test_entries_pushed_after_a_step_age_on_the_monotonic_clock(tmp_path: Path) -> None:
    """An entry received after a +25 h step (its received_at on the stepped clock) is as young as it is."""
    clock = SteppingClock()
    expired: list[list[Entry]] = []
    spool = await started(tmp_path / "spool", clock, max_age=HOUR, expired=expired)
    try:
        await spool.push(entry(name="before", received_at=clock.time()))
        clock.wall_step = 25 * HOUR
        await spool.push(entry(name="after", received_at=clock.time()))
        clock.advance(HOUR - 5)
        taken = await take_now(spool)
        assert names(taken) == ["before", "after"] and expired == []
        assert [round(clock.time() - e.received_at) for e in taken] == [HOUR - 5, HOUR - 5]
        for e in taken:
            await spool.retry(e, 0.0)
        clock.advance(15)  # past max_age, and past the next expiry check
        assert await take_now(spool) == []
        assert sum(len(x) for x in expired) == 2
    finally:
        await spool.close()


async def test_wall_step_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A step is logged once (with its size) however many operations see it; a second step is logged again."""
    clock = SteppingClock()
    spool = await started(tmp_path / "spool", clock)
    try:
        clock.wall_step = 25 * HOUR
        with caplog.at_level(logging.WARNING, logger="relay.spool"):
            for i in range(5):
                await spool.push(entry(name=f"e{i}", received_at=clock.time()))
            clock.wall_step = -2 * HOUR
            await spool.push(entry(name="late", received_at=clock.time()))
        steps = [r.__dict__["step_seconds"] for r in caplog.records if r.name == "relay.spool"]
        assert steps == [25 * HOUR, -2 * HOUR]
    finally:
        await spool.close()


async def test_stored_time_in_the_future_is_taken_as_now_at_restart(tmp_path: Path) -> None:
    """Entries stored by a run whose clock was 2 h ahead: after a restart they are 0 s old, not -2 h, and expire
    max_age after the restart, not max_age + 2 h."""
    ahead = SteppingClock()
    ahead.wall_step = 2 * HOUR
    spool = await started(tmp_path / "spool", ahead)
    await spool.push(entry(name="a", received_at=ahead.time()))
    await spool.close()

    clock = SteppingClock()
    expired: list[list[Entry]] = []
    reopened = await started(tmp_path / "spool", clock, max_age=HOUR, expired=expired)
    try:
        assert await reopened.oldest_age() == 0.0
        assert db_rows(tmp_path, "SELECT received_at FROM entries") == [(clock.time(),)]
        (a,) = await take_now(reopened)
        await reopened.retry(a, 0.0)
        clock.advance(HOUR - 20)
        assert names(await take_now(reopened)) == ["a"]
        await reopened.retry(a, 0.0)
        clock.advance(20 + 11)
        assert await take_now(reopened) == []
        assert len(expired) == 1
    finally:
        await reopened.close()


async def test_spool_file_of_the_previous_format_opens(tmp_path: Path) -> None:
    """A spool.db written by the previous release (same table, wall times) opens, and its entries are due."""
    directory = tmp_path / "spool"
    directory.mkdir()
    db = sqlite3.connect(directory / "spool.db")
    db.executescript(V1_SCHEMA)
    clock = SteppingClock()
    db.execute(
        "INSERT INTO entries (base_url, project_id, public_key, body, categories, received_at, event_id, client,"
        " client_reports_only, attempts, not_before, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ("https://sentry.example", "1", "k" * 32, b"body", "error", clock.time() - 60, "old", None, 0, 3,
         clock.time() + HOUR, 4),
    )  # fmt: skip
    db.commit()
    db.close()
    spool = await started(directory, clock)
    try:
        assert await spool.oldest_age() == pytest.approx(60)
        (old,) = await asyncio.wait_for(spool.take(1, 0.0), 1.0)
        assert (old.event_id, old.attempts, old.body) == ("old", 3, b"body")
    finally:
        await spool.close()


# The schema of spool files written before clock steps were handled (kept here as a fixture, not imported).
V1_SCHEMA = """
PRAGMA auto_vacuum=INCREMENTAL;
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    base_url TEXT NOT NULL,
    project_id TEXT NOT NULL,
    public_key TEXT NOT NULL,
    body BLOB NOT NULL,
    categories TEXT NOT NULL,
    received_at REAL NOT NULL,
    event_id TEXT,
    client TEXT,
    client_reports_only INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_due ON entries (not_before, id);
CREATE INDEX IF NOT EXISTS entries_received ON entries (received_at);
"""
