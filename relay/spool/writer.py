"""The spool's writer thread: it owns the SQLite connection and runs queued operations in group commits.

Operations from the event loop queue up while it commits, so a single transaction (and a single
fsync) covers every envelope that arrived in the meantime. Besides, it moves a corrupt spool file
aside at start-up (relay.spool.salvage), notices the file being deleted or replaced, and on a full
disk spends the reserve (relay.spool.reserve) on draining.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..clock import Clock
from ..errors import SpoolFull
from ..logs import log_event
from ..metrics import Metrics
from .reserve import Reserve, is_disk_full, reclaim
from .salvage import is_corrupt, quarantine, salvage
from .statements import OPERATIONS, SCHEMA, delete, store_salvaged, vacuum
from .timeline import Timeline

logger = logging.getLogger("relay.spool")

FILE_LOST = "spool file was deleted or replaced"
DISK_FULL = "the spool's disk is full"
_MAX_GROUP = 1024  # operations per transaction
_LARGE_ENTRY = 256 * 1024  # bytes; inserts above this are committed on their own
_VACUUM_PAGES = 2048  # free pages given back to the file system per housekeeping pass (8 MiB at 4 KiB pages)
_FREEING = frozenset({"delete", "expire", "housekeep"})  # operations after which a full disk may have room


@dataclass
class Op:
    """One operation for the writer: its kind (a key of OPERATIONS), arguments, and the future to settle."""

    kind: str
    args: Any
    future: asyncio.Future[Any] | None = None
    result: Any = None


class Writer:
    """Runs `ops` on `<directory>/spool.db` in its own thread; `lost` and `disk_full` tell the event loop why not."""

    def __init__(
        self,
        directory: Path,
        *,
        fsync: bool,
        timeline: Timeline,
        clock: Clock,
        reserve: int,
        pending: Callable[[], int],
        metrics: Metrics | None = None,
    ) -> None:
        self.database = directory / "spool.db"
        self.ops: queue.SimpleQueue[Op | None] = queue.SimpleQueue()
        self.lost = False  # spool.db was deleted or replaced under the open connection
        self.disk_full = False  # a write failed for want of space, and there is no room for the reserve yet
        self.quarantined: Path | None = None  # where a corrupt spool.db was moved at start-up
        self._fsync = fsync
        self._time = timeline
        self._clock = clock
        self._reserve = Reserve(directory, reserve)
        self._pending = pending
        self._metrics = metrics
        self._file_id: tuple[int, int] | None = None  # (st_dev, st_ino) of spool.db as opened
        self._lost_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> asyncio.Future[tuple[int, int]]:
        """Start the thread; the future gets the entries and bytes the file holds once it is open."""
        self._loop = loop
        ready: asyncio.Future[tuple[int, int]] = loop.create_future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="relay-spool-writer", daemon=True)
        self._thread.start()
        return ready

    async def stop(self) -> None:
        """Finish the queued operations, checkpoint and close the connection."""
        self.ops.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)

    @property
    def opened(self) -> bool:
        """Whether the file has been opened (and so can be watched)."""
        return self._file_id is not None

    def check_file(self) -> bool:
        """Whether spool.db is still the file the spool opened; the first time it isn't, log it (either thread)."""
        if self.lost:
            return False
        try:
            stat = os.stat(self.database)
            same = (stat.st_dev, stat.st_ino) == self._file_id
        except (FileNotFoundError, NotADirectoryError):
            same = False
        except OSError:  # can't tell (permissions): keep going rather than refuse on a guess
            same = True
        if same:
            return True
        with self._lost_lock:
            if self.lost:
                return False
            self.lost = True
        log_event(
            logger,
            logging.ERROR,
            "spool file was deleted or replaced: refusing envelopes until the relay restarts",
            path=str(self.database),
            held=self._pending(),  # still forwarded from the open file, but lost if the relay stops first
        )
        return False

    def _run(self, ready: asyncio.Future[tuple[int, int]]) -> None:
        """The writer thread: group operations into transactions, then resolve their futures."""
        assert self._loop is not None
        try:
            db, count, size = self._open_or_recover()
        except Exception as exc:  # surface the failure to start()
            self._loop.call_soon_threadsafe(_fail, ready, exc)
            return
        if not self._hold_reserve():
            self._enter_disk_full()  # drain first; envelopes are taken once there is room again
        self._loop.call_soon_threadsafe(_resolve, ready, (count, size))
        running = True
        carried: Op | None = None
        while running:
            first = carried if carried is not None else self.ops.get()
            carried = None
            group: list[Op] = []
            if first is None:
                running = False
            else:
                group.append(first)
                while len(group) < _MAX_GROUP and not _large(first):
                    try:
                        op = self.ops.get_nowait()
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
                self.run_group(db, group)
        with contextlib.suppress(sqlite3.Error):
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()

    def _open(self) -> tuple[sqlite3.Connection, int, int]:
        """Open (or create) spool.db: the connection, and the entries and bytes it holds."""
        db = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect when the file is created
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if self._fsync else 'NORMAL'}")
            db.executescript(SCHEMA)
            count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
            db.execute("UPDATE entries SET not_before = 0 WHERE not_before > 0")  # after a restart, all is due
            # Stored times are wall times of an earlier run; one in the future (the clock went back) is now.
            now = self._time.now()
            db.execute("UPDATE entries SET received_at = ? WHERE received_at > ?", (now, now))
            stat = os.stat(self.database)
        except BaseException as exc:
            try:
                if is_corrupt(exc):  # moved aside first: closing would delete its WAL (evidence, maybe rows)
                    self.quarantined = quarantine(self.database, self._clock.time())
            finally:
                db.close()
            raise
        self._file_id = (stat.st_dev, stat.st_ino)
        return db, count, size

    def _open_or_recover(self) -> tuple[sqlite3.Connection, int, int]:
        """`_open()`; when spool.db is corrupt, it is moved aside: open a fresh one and salvage what can be read."""
        try:
            return self._open()
        except sqlite3.DatabaseError as exc:
            if self.quarantined is None:
                raise
            moved, error = self.quarantined, exc.sqlite_errorname
        log_event(
            logger,
            logging.ERROR,
            "spool file is corrupt: moved aside (delete it once inspected), starting a fresh spool",
            path=str(moved),
            error=error,
        )
        if self._metrics is not None:
            self._metrics.spool_corrupt.inc()
        db, _, _ = self._open()
        now = self._time.now()
        result = salvage(moved, lambda rows: store_salvaged(db, rows, now))
        log_event(
            logger,
            logging.INFO if result.lost == 0 else logging.WARNING,
            "entries salvaged from the corrupt spool file",
            path=str(moved),
            salvaged=result.copied,
            lost="unknown" if result.lost is None else result.lost,
        )
        count, size = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM entries").fetchone()
        return db, count, size

    def run_group(self, db: sqlite3.Connection, group: list[Op]) -> None:
        """Run a group of operations, then settle their futures (with one wake-up of the event loop)."""
        assert self._loop is not None
        errors = self._transact(db, group)
        full = [index for index, error in errors.items() if is_disk_full(error)]
        if full:
            # Out of space: spend the reserve on what drains (deletes, retries), never on new envelopes.
            self._enter_disk_full()
            for index in full:
                retried = SpoolFull(DISK_FULL) if group[index].kind == "insert" else self._drain(db, group[index])
                if retried is None:
                    del errors[index]
                else:
                    errors[index] = retried
        unexpected = [error for error in errors.values() if not isinstance(error, SpoolFull)]
        if unexpected:
            log_event(logger, logging.ERROR, "spool operations failed", failed=len(unexpected), ops=len(group),
                      error=repr(unexpected[0]))  # fmt: skip
        inserted = [index for index, op in enumerate(group) if op.kind == "insert" and index not in errors]
        if inserted and not self.check_file():
            # Committed to a file that is gone: take them back, so the clients' 503 is the truth.
            with contextlib.suppress(sqlite3.Error):
                delete(db, [group[index].result for index in inserted])
            errors.update(dict.fromkeys(inserted, SpoolFull(FILE_LOST)))
        if self.disk_full and any(op.kind in _FREEING for op in group):
            self._leave_disk_full(db)
        elif any(op.kind == "housekeep" for op in group):
            with contextlib.suppress(sqlite3.Error):
                vacuum(db, _VACUUM_PAGES)
        outcomes: list[tuple[asyncio.Future[Any], Any, Exception | None]] = []
        for index, op in enumerate(group):
            if op.future is None:
                continue
            error = errors.get(index)
            failure = None if error is None else _refusal(error)
            outcomes.append((op.future, op.result, failure))
        if outcomes:
            self._loop.call_soon_threadsafe(_settle, outcomes)

    def _transact(self, db: sqlite3.Connection, ops: list[Op]) -> dict[int, Exception]:
        """One transaction for the operations, each in a savepoint so one failure fails only itself; the failures.

        While the disk is full, inserts are refused without being tried.
        """
        errors: dict[int, Exception] = {}
        if not ops:
            return errors
        try:
            db.execute("BEGIN IMMEDIATE")
            for index, op in enumerate(ops):
                if op.kind == "insert" and self.disk_full:
                    errors[index] = SpoolFull(DISK_FULL)
                    continue
                db.execute("SAVEPOINT op")
                try:
                    op.result = OPERATIONS[op.kind](db, op.args)
                except Exception as exc:
                    if not db.in_transaction:  # SQLite rolled it all back itself (as it may on a full disk)
                        raise
                    errors[index] = exc
                    db.execute("ROLLBACK TO op")
                db.execute("RELEASE op")
            db.execute("COMMIT")
        except Exception as exc:  # the transaction itself failed: nothing in it happened
            with contextlib.suppress(Exception):
                db.execute("ROLLBACK")
            errors = dict.fromkeys(range(len(ops)), exc)
        return errors

    def _drain(self, db: sqlite3.Connection, op: Op) -> Exception | None:
        """Run an operation that failed for want of space again, on its own; after a checkpoint if need be."""
        errors = self._transact(db, [op])
        if errors and is_disk_full(errors[0]):
            reclaim(db, 0)  # the WAL's frames are in the database now: their space can be written over
            errors = self._transact(db, [op])
        return errors.get(0)

    def _hold_reserve(self) -> bool:
        """Allocate the reserve; False when the disk has no room for it (writer thread)."""
        try:
            return self._reserve.hold()
        except OSError as exc:  # the file system can't allocate ahead: go on without a reserve
            log_event(logger, logging.WARNING, "no disk space can be reserved for draining", error=repr(exc))
            self._reserve.size = 0
            return True

    def _enter_disk_full(self) -> None:
        if self.disk_full:
            return
        self.disk_full = True
        self._reserve.release()
        log_event(
            logger,
            logging.WARNING,
            "spool disk is full: reserve released for draining, envelopes refused until there is room",
            path=str(self.database.parent),
            reserve=self._reserve.size,
        )

    def _leave_disk_full(self, db: sqlite3.Connection) -> None:
        """After a drain step: give freed pages back to the file system, and end the episode once the reserve fits."""
        reclaim(db, _VACUUM_PAGES)
        if self._reserve.room() and self._hold_reserve():
            self.disk_full = False
            log_event(logger, logging.INFO, "spool disk has room again: reserve held, envelopes accepted")


def _large(op: Op) -> bool:
    return op.kind == "insert" and op.args.size > _LARGE_ENTRY


def _refusal(error: Exception) -> SpoolFull:
    return error if isinstance(error, SpoolFull) else SpoolFull(f"spool write failed: {error}")


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
