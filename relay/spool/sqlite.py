"""A durable spool on SQLite in WAL mode: an envelope is on disk before the client hears 200.

One writer thread owns the connection. Operations from the event loop queue up while it
commits, so a single transaction (and a single fsync) covers every envelope that arrived
in the meantime: group commit. Pending envelopes live on disk; memory holds only the ids
in flight and two counters, however large the backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..clock import Clock
from ..errors import SpoolFull
from ..logs import log_event
from ..routing import Target
from .base import Entry

logger = logging.getLogger("relay.spool")

_SCHEMA = """
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
_COLUMNS = (
    "id, base_url, project_id, public_key, body, categories, received_at, event_id, client, "
    "client_reports_only, attempts, size"
)
_MAX_GROUP = 1024  # operations per transaction
_EXPIRY_INTERVAL = 10.0
_EXPIRE_SLICE = 1000
_EMPTY_DATABASE = 64 * 1024  # schema and index pages, not counted against max_disk


_LARGE_ENTRY = 256 * 1024  # bytes; inserts above this are committed on their own


@dataclass
class _Op:
    kind: str
    args: Any
    future: asyncio.Future[Any] | None = None
    result: Any = field(default=None)


class SqliteSpool:
    """Entries in `<path>/spool.db`; survives process crashes, and OS crashes too with `fsync: true`."""

    durable = True

    def __init__(
        self,
        path: str | Path,
        max_disk: int,
        max_age: float,
        fsync: bool,
        clock: Clock,
        on_expired: Callable[[list[Entry]], None] | None = None,
    ) -> None:
        self._dir = Path(path)
        self._max_disk = max_disk
        self._max_age = max_age
        self._fsync = fsync
        self._clock = clock
        self._on_expired = on_expired
        self._ops: queue.SimpleQueue[_Op | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self._inflight: set[int] = set()
        self._count = 0
        self._bytes = 0
        self._disk = 0  # pages in use in the database file, refreshed periodically
        self._oldest: float | None = None
        self._next_expiry = 0.0
        self._closed = False
        self.drained = 0  # entries settled and deleted, for the drain-rate metric

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Open (or recover) the database and start the writer thread."""
        self._loop = asyncio.get_running_loop()
        self._dir.mkdir(parents=True, exist_ok=True)
        ready: asyncio.Future[tuple[int, int]] = self._loop.create_future()
        self._thread = threading.Thread(target=self._writer, args=(ready,), name="relay-spool-writer", daemon=True)
        self._thread.start()
        self._count, self._bytes = await ready
        if self._count:
            log_event(logger, logging.INFO, "spool recovered", entries=self._count, bytes=self._bytes)
            self._wakeup.set()

    async def close(self) -> list[Entry]:
        """Flush and close; nothing is lost, so nothing is handed back."""
        if self._closed:
            return []
        self._closed = True
        self._ops.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)
        return []

    # -- the Spool protocol -----------------------------------------------------------

    async def push(self, entry: Entry) -> None:
        """Write the entry durably; SpoolFull when `max_disk` would be passed."""
        if self._closed:
            raise SpoolFull("spool is closed")
        used = max(self._bytes, self._disk - _EMPTY_DATABASE)
        if used + entry.size > self._max_disk:
            raise SpoolFull(f"spool holds {used} bytes, max_disk is {self._max_disk}")
        self._bytes += entry.size
        self._count += 1
        try:
            entry.id = await self._call("insert", entry)
        except BaseException:
            self._bytes -= entry.size
            self._count -= 1
            raise
        self._wakeup.set()

    async def take(self, max_entries: int, linger: float, *, due_only: bool = True) -> list[Entry]:
        """Wait for due entries; return up to `max_entries` (oldest first), lingering briefly to fill up.

        With `due_only=False` (outage probes), entries still waiting out a retry delay count too.
        """
        while True:
            now = self._clock.time()
            if now >= self._next_expiry:
                await self._expire(now)
            self._wakeup.clear()
            horizon = now if due_only else float("inf")
            rows = await self._call("select", (horizon, max_entries + len(self._inflight)))
            batch = [e for e in rows if e.id not in self._inflight][:max_entries]
            if batch and len(batch) < max_entries and linger > 0:
                await self._clock.sleep(linger)
                rows = await self._call("select", (self._clock.time(), max_entries + len(self._inflight)))
                batch = [e for e in rows if e.id not in self._inflight][:max_entries]
            if batch:
                self._inflight.update(e.id for e in batch)
                return batch
            due: float | None = await self._call("next_due", self._clock.time())
            timeout = _EXPIRY_INTERVAL if due is None else min(_EXPIRY_INTERVAL, max(0.001, due - self._clock.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def ack(self, entries: Sequence[Entry]) -> None:
        """Delete settled entries."""
        if not entries:
            return
        await self._call("delete", [e.id for e in entries])
        for entry in entries:
            self._inflight.discard(entry.id)
            self._count -= 1
            self._bytes -= entry.size
        self.drained += len(entries)

    async def retry(self, entry: Entry, delay: float) -> None:
        """Make the entry due again after `delay` seconds."""
        await self._call("retry", (self._clock.time() + delay, entry.attempts, entry.id))
        self._inflight.discard(entry.id)
        self._wakeup.set()

    async def release_delayed(self) -> None:
        """Make every waiting entry due now (the upstream is back: drain at full speed)."""
        await self._call("release", self._clock.time())
        self._wakeup.set()

    def pending(self) -> int:
        """Entries on disk (waiting, delayed or in flight)."""
        return self._count

    def pending_bytes(self) -> int:
        """Bytes of envelope bodies on disk."""
        return self._bytes

    async def oldest_age(self) -> float:
        """Seconds since the oldest pending entry was received (0 when empty)."""
        oldest: float | None = await self._call("oldest", None)
        return 0.0 if oldest is None else max(0.0, self._clock.time() - oldest)

    # -- internals ----------------------------------------------------------------------

    async def _expire(self, now: float) -> None:
        self._next_expiry = now + _EXPIRY_INTERVAL
        # Give freed pages back to the file system, and measure what the file really uses.
        self._disk = await self._call("housekeep", None)
        if self._max_age <= 0:
            return
        expired: list[Entry] = []
        while True:  # in slices, so a huge expired backlog never sits in memory at once
            rows: list[tuple[int, str, int]] = await self._call("expire", (now - self._max_age, tuple(self._inflight)))
            for _, categories, size in rows:
                self._count -= 1
                self._bytes -= size
                expired.append(_stub(categories))
            if len(rows) < _EXPIRE_SLICE:
                break
        if not expired:
            return
        log_event(logger, logging.WARNING, "spool entries expired", entries=len(expired), max_age=self._max_age)
        if self._on_expired is not None:
            self._on_expired(expired)

    async def _call(self, kind: str, args: Any) -> Any:
        assert self._loop is not None
        future: asyncio.Future[Any] = self._loop.create_future()
        self._ops.put(_Op(kind, args, future))
        return await future

    def _writer(self, ready: asyncio.Future[tuple[int, int]]) -> None:
        """The writer thread: group operations into transactions, then resolve their futures."""
        assert self._loop is not None
        try:
            db = sqlite3.connect(self._dir / "spool.db", isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect when the file is created
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if self._fsync else 'NORMAL'}")
            db.executescript(_SCHEMA)
            count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
            db.execute("UPDATE entries SET not_before = 0")  # after a restart, everything is due
        except Exception as exc:  # surface the failure to start()
            self._loop.call_soon_threadsafe(_fail, ready, exc)
            return
        self._loop.call_soon_threadsafe(_resolve, ready, (count, size))
        running = True
        carried: _Op | None = None
        while running:
            first = carried if carried is not None else self._ops.get()
            carried = None
            group: list[_Op] = []
            if first is None:
                running = False
            else:
                group.append(first)
                while len(group) < _MAX_GROUP and not _large(first):
                    try:
                        op = self._ops.get_nowait()
                    except queue.Empty:
                        break
                    if op is None:
                        running = False
                        break
                    if _large(op):  # a large write gets its own commit: small ones don't wait on its fsync
                        carried = op
                        break
                    group.append(op)
            if group:
                self._run_group(db, group)
        with contextlib.suppress(sqlite3.Error):
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()

    def _run_group(self, db: sqlite3.Connection, group: list[_Op]) -> None:
        """One transaction for the group; each operation in a savepoint, so one failure fails only itself."""
        assert self._loop is not None
        errors: dict[int, Exception] = {}
        try:
            db.execute("BEGIN IMMEDIATE")
            for index, op in enumerate(group):
                db.execute("SAVEPOINT op")
                try:
                    op.result = _OPERATIONS[op.kind](db, op.args)
                except Exception as exc:
                    errors[index] = exc
                    db.execute("ROLLBACK TO op")
                db.execute("RELEASE op")
            db.execute("COMMIT")
        except Exception as exc:  # the transaction itself failed: nothing in it happened
            with contextlib.suppress(Exception):
                db.execute("ROLLBACK")
            errors = dict.fromkeys(range(len(group)), exc)
        if errors:
            log_event(logger, logging.ERROR, "spool operations failed", failed=len(errors), ops=len(group),
                      error=repr(next(iter(errors.values()))))  # fmt: skip
        outcomes: list[tuple[asyncio.Future[Any], Any, Exception | None]] = []
        for index, op in enumerate(group):
            if op.future is None:
                continue
            error = errors.get(index)
            failure = None if error is None else SpoolFull(f"spool write failed: {error}")
            outcomes.append((op.future, op.result, failure))
        if outcomes:  # one wake-up of the event loop for the whole group, not one per operation
            self._loop.call_soon_threadsafe(_settle, outcomes)


def _large(op: _Op) -> bool:
    return op.kind == "insert" and op.args.size > _LARGE_ENTRY


def _settle(outcomes: list[tuple[asyncio.Future[Any], Any, Exception | None]]) -> None:
    for future, value, failure in outcomes:
        if failure is None:
            _resolve(future, value)
        else:
            _fail(future, failure)


def _resolve(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _row_to_entry(row: tuple[Any, ...]) -> Entry:
    (id_, base_url, project_id, public_key, body, categories, received_at, event_id, client, reports, attempts, _) = row
    return Entry(
        target=Target(base_url, project_id, public_key),
        body=bytes(body),
        categories=tuple(categories.split(",")) if categories else (),
        received_at=received_at,
        event_id=event_id,
        client=client,
        client_reports_only=bool(reports),
        attempts=attempts,
        id=id_,
    )


def _insert(db: sqlite3.Connection, entry: Entry) -> int:
    cursor = db.execute(
        "INSERT INTO entries (base_url, project_id, public_key, body, categories, received_at, event_id, client,"
        " client_reports_only, attempts, not_before, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
        (
            entry.target.base_url,
            entry.target.project_id,
            entry.target.public_key,
            entry.body,
            ",".join(entry.categories),
            entry.received_at,
            entry.event_id,
            entry.client,
            int(entry.client_reports_only),
            entry.attempts,
            entry.size,
        ),
    )
    return int(cursor.lastrowid or 0)


def _select(db: sqlite3.Connection, args: tuple[float, int]) -> list[Entry]:
    now, limit = args
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM entries WHERE not_before <= ? ORDER BY id LIMIT ?", (now, limit)
    ).fetchall()
    return [_row_to_entry(row) for row in rows]


def _delete(db: sqlite3.Connection, ids: list[int]) -> None:
    db.executemany("DELETE FROM entries WHERE id = ?", [(i,) for i in ids])


def _retry(db: sqlite3.Connection, args: tuple[float, int, int]) -> None:
    db.execute("UPDATE entries SET not_before = ?, attempts = ? WHERE id = ?", args)


def _release(db: sqlite3.Connection, now: float) -> None:
    db.execute("UPDATE entries SET not_before = 0 WHERE not_before > ?", (now,))


def _next_due(db: sqlite3.Connection, now: float) -> float | None:
    """When the next delayed entry becomes due (entries due now but in flight wake us through ack or retry)."""
    row = db.execute("SELECT MIN(not_before) FROM entries WHERE not_before > ?", (now,)).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def _oldest(db: sqlite3.Connection, _: None) -> float | None:
    row = db.execute("SELECT MIN(received_at) FROM entries").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def _expire(db: sqlite3.Connection, args: tuple[float, tuple[int, ...]]) -> list[tuple[int, str, int]]:
    cutoff, inflight = args
    rows = db.execute(
        "SELECT id, categories, size FROM entries WHERE received_at < ? ORDER BY id LIMIT ?", (cutoff, _EXPIRE_SLICE)
    ).fetchall()
    expired = [row for row in rows if row[0] not in inflight]
    db.executemany("DELETE FROM entries WHERE id = ?", [(row[0],) for row in expired])
    return expired


def _housekeep(db: sqlite3.Connection, _: None) -> int:
    """Reclaim free pages (incremental vacuum) and return the bytes the database's used pages take."""
    db.execute("PRAGMA incremental_vacuum(20000)").fetchall()  # up to ~80 MB per pass, every 10 s
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def _stub(categories: str) -> Entry:
    """An expired entry, for outcome accounting only (its body was never loaded)."""
    return Entry(Target("", "", ""), b"", tuple(categories.split(",")) if categories else (), 0.0)


_OPERATIONS: dict[str, Callable[[sqlite3.Connection, Any], Any]] = {
    "insert": _insert,
    "select": _select,
    "delete": _delete,
    "retry": _retry,
    "release": _release,
    "next_due": _next_due,
    "oldest": _oldest,
    "expire": _expire,
    "housekeep": _housekeep,
}
