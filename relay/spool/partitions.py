"""Spool partitions of `relay run --workers N`: one directory per worker, and adopting the orphaned ones.

With one process the spool is `<spool.path>/spool.db`, as it always was; with N workers, worker i
owns `<spool.path>/worker-<i>/spool.db`. A partition no current worker owns (left by a run with more
workers, or by a single process before workers were turned on) is an orphan: worker 0 (or the
single process) moves its entries into its own spool on start-up, then deletes it. Each owner holds
an exclusive lock on `spool.lock` in its partition for as long as it runs, so a partition still in
use by a live process is never adopted.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path

from ..config import Config
from ..logs import log_event
from .base import Spool
from .reserve import NAME as RESERVE

logger = logging.getLogger("relay")

_DATABASE = "spool.db"
_LOCK = "spool.lock"
_BATCH = 200  # entries moved per transaction of the receiving spool


def partition_path(spool_path: str, index: int, count: int) -> Path:
    """A worker's spool directory: `spool.path` itself for a single process, else `spool.path/worker-<i>`."""
    return Path(spool_path) if count == 1 else Path(spool_path) / f"worker-{index}"


def partition_config(config: Config, index: int, count: int) -> Config:
    """The config a worker runs with: its own spool partition (the same config for a single process)."""
    if count == 1 or config.spool.backend != "sqlite":
        return config
    spool = dataclasses.replace(config.spool, path=str(partition_path(config.spool.path, index, count)))
    return dataclasses.replace(config, spool=spool)


def orphan_partitions(spool_path: str, count: int) -> list[Path]:
    """Partitions with a database that no worker of a `count`-worker run owns, in index order."""
    root = Path(spool_path)
    found: list[tuple[int, Path]] = []
    if count > 1 and (root / _DATABASE).exists():
        found.append((-1, root))
    with contextlib.suppress(OSError):
        for child in root.iterdir():
            suffix = child.name.removeprefix("worker-")
            owned = suffix.isdigit() and count > 1 and int(suffix) < count
            if child.name.startswith("worker-") and suffix.isdigit() and not owned and (child / _DATABASE).exists():
                found.append((int(suffix), child))
    return [path for _, path in sorted(found)]


def lock_partition(path: Path) -> int | None:
    """Take the partition's lock without waiting; the open descriptor, or None if another process holds it."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def hold_partition(config: Config) -> int | None:
    """Lock this process's own partition for its lifetime (the kernel drops the lock on any exit)."""
    if config.spool.backend != "sqlite":
        return None
    try:
        fd = lock_partition(Path(config.spool.path))
    except OSError:  # the spool itself reports an unusable directory when it starts
        return None
    if fd is None:
        log_event(logger, logging.WARNING, "spool partition is locked by another process", path=config.spool.path)
    return fd


def release_partition(fd: int | None) -> None:
    """Drop a lock taken by `lock_partition` or `hold_partition`."""
    if fd is not None:
        os.close(fd)


async def adopt_orphans(spool_path: str, count: int, into: Spool, open_partition: Callable[[Path], Spool]) -> int:
    """Move every orphaned partition's entries into `into`, deleting each emptied partition; entries moved."""
    moved = 0
    for path in orphan_partitions(spool_path, count):
        fd: int | None = None
        try:
            fd = lock_partition(path)
            if fd is None:
                log_event(logger, logging.WARNING, "orphaned spool partition is in use, not adopted", path=str(path))
                continue
            moved += await _adopt(path, into, open_partition, keep_dir=path == Path(spool_path))
        except Exception as exc:  # one unreadable partition must not stop the others, nor the relay
            log_event(
                logger, logging.ERROR, "could not adopt orphaned spool partition", path=str(path), error=repr(exc)
            )
        finally:
            release_partition(fd)
    return moved


async def _adopt(path: Path, into: Spool, open_partition: Callable[[Path], Spool], *, keep_dir: bool) -> int:
    """Move one partition's entries, and delete it once it is empty."""
    source = open_partition(path)
    await source.start()
    try:
        found = source.pending()
        moved = await _move(source, into)
        left = source.pending()
    finally:
        await source.close()
    log_event(
        logger,
        logging.WARNING if left else logging.INFO,
        "orphaned spool partition adopted",
        path=str(path),
        entries=found,
        moved=moved,
        left=left,
    )
    if not left:
        _delete(path, keep_dir=keep_dir)
    return moved


async def _move(source: Spool, into: Spool) -> int:
    """Push entries into `into`, then ack them in `source`: a crash in between duplicates, never loses."""
    moved = 0
    while source.pending():
        try:  # bounded: expiry inside take() may empty the spool, and then take() would wait forever
            batch = await asyncio.wait_for(source.take(_BATCH, 0.0, due_only=False), 2.0)
        except TimeoutError:
            continue
        copies = [dataclasses.replace(entry, id=0) for entry in batch]  # push() numbers its own copy
        results = await asyncio.gather(*(into.push(copy) for copy in copies), return_exceptions=True)
        done = [entry for entry, result in zip(batch, results, strict=True) if result is None]
        await source.ack(done)
        moved += len(done)
        failure = next((result for result in results if result is not None), None)
        if isinstance(failure, asyncio.CancelledError):
            raise failure
        if failure is not None:  # the receiving spool is full: the rest waits in the partition for the next start
            log_event(logger, logging.WARNING, "spool full while adopting a partition", error=repr(failure))
            break
    return moved


def _delete(path: Path, *, keep_dir: bool) -> None:
    names = (_DATABASE, f"{_DATABASE}-wal", f"{_DATABASE}-shm", RESERVE) + (() if keep_dir else (_LOCK,))
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            (path / name).unlink()
    if not keep_dir:
        with contextlib.suppress(OSError):
            path.rmdir()
