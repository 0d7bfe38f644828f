"""Disk space held back for draining: a file of allocated blocks next to the spool.

On a full disk SQLite cannot even delete: a delete, a checkpoint and a vacuum all write to the WAL
first. So the spool keeps `spool.reserve` allocated while all is well, and deletes it when a write
fails for want of space. New envelopes are refused from then on, so the space it frees goes to
draining only; once draining has given space back, the reserve is allocated again and the spool
takes envelopes again.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from pathlib import Path

from .statements import vacuum

NAME = "spool.reserve"
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
_MIN_ROOM = 64 * 1024  # bytes free before envelopes are taken again, without a reserve


class Reserve:
    """`size` bytes allocated in `<directory>/spool.reserve` (used by the spool's writer thread only)."""

    def __init__(self, directory: Path, size: int) -> None:
        self.path = directory / NAME
        self.size = size
        self.held = False

    def hold(self) -> bool:
        """Allocate the reserve (again); False, leaving nothing allocated, when the disk has no room for it."""
        if self.held or self.size <= 0:
            self.held = True
            return True
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)  # real blocks: a sparse file would hold nothing back
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.errno not in _NO_SPACE:
                raise
            self.release()
            return False
        self.held = True
        return True

    def room(self) -> bool:
        """Whether the disk has room for the reserve and as much again (so that a full disk doesn't flap)."""
        return shutil.disk_usage(self.path.parent).free >= 2 * max(self.size, _MIN_ROOM)

    def release(self) -> None:
        """Give the reserved space back to the file system."""
        self.held = False
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's "database or disk is full"."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_FULL


def reclaim(db: sqlite3.Connection, pages: int) -> None:
    """Checkpoint and truncate the WAL, give up to `pages` free pages back, and truncate the WAL again.

    Outside a transaction only. The vacuum's page moves go through the WAL too: the first checkpoint
    makes room for them, the second shrinks the database file.
    """
    with contextlib.suppress(sqlite3.Error):
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    if pages > 0:
        with contextlib.suppress(sqlite3.Error):
            vacuum(db, pages)
        with contextlib.suppress(sqlite3.Error):
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
