"""The SQL of the spool's writer thread: the schema, and one function per kind of operation.

The functions of OPERATIONS run inside the writer's transaction, each in a savepoint of its own;
`store_salvaged` and `vacuum` run outside one.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from typing import Any

from ..routing import Target
from .base import Entry
from .salvage import Row

SCHEMA = """
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
EXPIRE_SLICE = 1000  # rows per expiry statement


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


def store_salvaged(db: sqlite3.Connection, rows: list[Row], now: float) -> None:
    """Insert rows salvaged from a corrupt file (ids kept, so the order is too), in one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(
            "INSERT OR IGNORE INTO entries (id, base_url, project_id, public_key, body, categories, received_at,"
            " event_id, client, client_reports_only, attempts, not_before, size)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            [(*row[:6], min(row[6], now), *row[7:], len(row[4])) for row in rows],
        )
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise


def _select(db: sqlite3.Connection, args: tuple[float, int]) -> list[Entry]:
    now, limit = args
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM entries WHERE not_before <= ? ORDER BY id LIMIT ?", (now, limit)
    ).fetchall()
    return [_row_to_entry(row) for row in rows]


def delete(db: sqlite3.Connection, ids: list[int]) -> None:
    """Delete entries by id."""
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
        "SELECT id, categories, size FROM entries WHERE received_at < ? ORDER BY id LIMIT ?", (cutoff, EXPIRE_SLICE)
    ).fetchall()
    expired = [row for row in rows if row[0] not in inflight]
    db.executemany("DELETE FROM entries WHERE id = ?", [(row[0],) for row in expired])
    return expired


def _housekeep(db: sqlite3.Connection, _: None) -> int:
    """The bytes the database's used pages take (the writer gives free pages back after the transaction)."""
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return int((pages - free) * page_size)


def vacuum(db: sqlite3.Connection, pages: int) -> None:
    """Give up to `pages` free pages back to the file system; outside a transaction only (it ends one).

    Not `execute()`: the pragma frees one page per step, and sqlite3 steps a statement without result
    columns only once. `executescript()` steps it to the end.
    """
    db.executescript(f"PRAGMA incremental_vacuum({int(pages)});")


def stub(categories: str) -> Entry:
    """An expired entry, for outcome accounting only (its body was never loaded)."""
    return Entry(Target("", "", ""), b"", tuple(categories.split(",")) if categories else (), 0.0)


OPERATIONS: dict[str, Callable[[sqlite3.Connection, Any], Any]] = {
    "insert": _insert,
    "select": _select,
    "delete": delete,
    "retry": _retry,
    "release": _release,
    "next_due": _next_due,
    "oldest": _oldest,
    "expire": _expire,
    "housekeep": _housekeep,
}
