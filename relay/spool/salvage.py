"""A corrupt spool file: moved aside (kept for forensics), and what can still be read copied out of it.

A spool file SQLite cannot open (not a database, a malformed image: a disk fault, a truncated copy)
must not keep the relay from starting. The file and its WAL move to `spool.db.corrupt-<UTC time>`,
the spool starts afresh, and every row of `entries` that can still be read, one by one, goes into
the new file. Nothing from a row is ever logged: counts only.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = tuple[Any, ...]

# The columns of `entries` a salvaged row keeps; `not_before` and `size` are set afresh.
COLUMNS = (
    "id, base_url, project_id, public_key, body, categories, received_at, event_id, client, "
    "client_reports_only, attempts"
)
_CORRUPT_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_MAX_ROWID = 2**63 - 1
_BATCH = 500  # rows per transaction of the new spool


@dataclass(frozen=True, slots=True)
class Salvaged:
    """What came out of a corrupt file: rows copied, and rows lost (None when the file can't say how many)."""

    copied: int
    lost: int | None


def is_corrupt(exc: BaseException) -> bool:
    """True for SQLite's "not a database" and "malformed" errors, not for locks, permissions or I/O errors."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and isinstance(code, int) and code & 0xFF in _CORRUPT_CODES


def quarantine(database: Path, now: float) -> Path:
    """Rename a database and its -wal and -shm to `<name>.corrupt-<UTC time>`; the database's new path."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = database.with_name(f"{database.name}.corrupt-{stamp}")
    serial = 1
    while target.exists():  # a second corrupt file within the same second
        serial += 1
        target = database.with_name(f"{database.name}.corrupt-{stamp}-{serial}")
    # The WAL first: a database renamed without it would be opened later with its WAL missing.
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            database.with_name(database.name + suffix).rename(target.with_name(target.name + suffix))
    database.rename(target)
    return target


def salvage(source: Path, store: Callable[[list[Row]], None]) -> Salvaged:
    """Copy every readable, well-formed row of `entries` in `source` to `store`, in batches, in id order.

    `store` raising stops the copy (the new spool is out of space): the rest counts as lost.
    """
    try:
        db = sqlite3.connect(f"file:{source}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return Salvaged(0, None)
    try:
        # Read what lies within a truncated file instead of refusing the whole of it.
        db.execute("PRAGMA writable_schema=ON")
        total = _count(db)
        copied = 0
        batch: list[Row] = []
        try:
            for row in _readable_rows(db):
                if not _well_formed(row):
                    continue
                batch.append(row)
                if len(batch) >= _BATCH:
                    store(batch)
                    copied += len(batch)
                    batch = []
            if batch:
                store(batch)
                copied += len(batch)
        except sqlite3.Error:  # the new spool could not take more
            pass
        return Salvaged(copied, None if total is None else max(0, total - copied))
    except sqlite3.Error:
        return Salvaged(0, None)
    finally:
        db.close()


def _count(db: sqlite3.Connection) -> int | None:
    """Rows the file claims to hold (SQLite counts them on an index), or None when even that can't be read."""
    try:
        return int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
    except sqlite3.DatabaseError:
        return None


def _readable_rows(db: sqlite3.Connection) -> Iterator[Row]:
    """Every row that can be read, in id order: scan, and where the scan breaks, skip to the next readable row."""
    after = 0
    while True:
        try:
            for row in db.execute(f"SELECT {COLUMNS} FROM entries WHERE id > ? ORDER BY id", (after,)):
                after = row[0]
                yield row
            return
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc) or exc.sqlite_errorcode == sqlite3.SQLITE_NOTADB:
                return
        row = _next_readable(db, after)
        if row is None:
            return
        after = row[0]
        yield row


def _next_readable(db: sqlite3.Connection, after: int) -> Row | None:
    """The first readable row past the id `after`, or None.

    Reads fail for every start id from `after` to the end of a damaged stretch and succeed past it: probe
    at doubling distances until one succeeds, then narrow down by halves to the first start that does.
    """
    bad, step = after, 1
    while True:
        start = after + step
        if start > _MAX_ROWID:
            return None
        ok, row = _probe(db, start)
        if ok:
            break
        bad, step = start, step * 2
    good = start
    while good - bad > 1:
        middle = (bad + good) // 2
        ok, found = _probe(db, middle)
        if ok:
            good, row = middle, found
        else:
            bad = middle
    return row


def _probe(db: sqlite3.Connection, start: int) -> tuple[bool, Row | None]:
    """Whether the first row from id `start` on can be read, and that row (None past the last)."""
    try:
        row = db.execute(f"SELECT {COLUMNS} FROM entries WHERE id >= ? ORDER BY id LIMIT 1", (start,)).fetchone()
    except sqlite3.DatabaseError:
        return False, None
    return True, row


def _well_formed(row: Row) -> bool:
    """A row the spool can turn back into an entry (a damaged page can yield values of the wrong type)."""
    id_, base_url, project_id, public_key, body, categories, received_at, event_id, client, reports, attempts = row
    return (
        isinstance(id_, int)
        and all(isinstance(value, str) for value in (base_url, project_id, public_key, categories))
        and isinstance(body, bytes)
        and isinstance(received_at, int | float)
        and all(value is None or isinstance(value, str) for value in (event_id, client))
        and isinstance(reports, int)
        and isinstance(attempts, int)
    )
