"""A corrupt spool file at start-up: moved aside, counted, logged, its readable rows salvaged; a sound one kept."""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from relay.app import create_app
from relay.metrics import Metrics
from relay.spool import Entry, SqliteSpool

from ..conftest import state_of
from ..support import FakeClock, FakeUpstream, auth_header, envelope_bytes, make_config
from .test_sqlite import entry, names

CORRUPT_NAME = re.compile(r"^spool\.db\.corrupt-\d{8}T\d{6}Z$")


def open_spool(directory: Path, metrics: Metrics | None = None) -> SqliteSpool:
    """A SqliteSpool in `directory` on a fake clock (not started)."""
    return SqliteSpool(directory, 10**9, 3600.0, False, FakeClock(), metrics=metrics)


def corrupt_total(metrics: Metrics) -> float:
    """The value of relay_spool_corrupt_total."""
    return next(s.value for m in metrics.spool_corrupt.collect() for s in m.samples if s.name.endswith("_total"))


def spool_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    """Records of the relay.spool logger at exactly `level`."""
    return [r for r in caplog.records if r.name == "relay.spool" and r.levelno == level]


async def filled_file(directory: Path, count: int, size: int) -> list[Entry]:
    """A real spool file in `directory` holding `count` entries of `size` bytes, closed (all in the main file)."""
    spool = open_spool(directory)
    await spool.start()
    entries = [entry(size, f"e{i:03d}") for i in range(count)]
    for e in entries:
        await spool.push(e)
    await spool.close()
    return entries


async def test_garbage_file_is_moved_aside_and_the_spool_starts_fresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A spool.db of random bytes moves to spool.db.corrupt-<UTC time> intact, its WAL too; start() works."""
    directory = tmp_path / "spool"
    directory.mkdir()
    garbage = {name: os.urandom(16384) for name in ("spool.db", "spool.db-wal", "spool.db-shm")}
    for name, data in garbage.items():
        (directory / name).write_bytes(data)
    metrics = Metrics()
    spool = open_spool(directory, metrics)
    with caplog.at_level(logging.INFO, logger="relay.spool"):
        await spool.start()
    try:
        moved = spool.quarantined
        assert moved is not None and moved.parent == directory and CORRUPT_NAME.match(moved.name)
        assert moved.read_bytes() == garbage["spool.db"]
        assert moved.with_name(moved.name + "-wal").read_bytes() == garbage["spool.db-wal"]
        assert moved.with_name(moved.name + "-shm").exists()  # an index of the WAL, rebuilt by whoever reads it
        assert spool.pending() == 0
        await spool.push(entry(name="after"))
        assert names(await spool.take(5, 0.0)) == ["after"]
        assert corrupt_total(metrics) == 1
        (error,) = spool_records(caplog, logging.ERROR)
        assert error.__dict__["path"] == str(moved)
        assert error.__dict__["error"] == "SQLITE_NOTADB"
        (summary,) = spool_records(caplog, logging.WARNING)
        assert (summary.__dict__["salvaged"], summary.__dict__["lost"]) == (0, "unknown")
    finally:
        await spool.close()
    check = sqlite3.connect(directory / "spool.db")
    assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    check.close()


async def test_truncated_spool_is_salvaged_row_by_row(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A real spool cut to half its size: the rows that can still be read come back intact, in order; the rest is
    counted as lost; no row content is logged."""
    directory = tmp_path / "spool"
    originals = await filled_file(directory, 200, size=1500)
    database = directory / "spool.db"
    size = database.stat().st_size
    with database.open("r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(sqlite3.DatabaseError):  # SQLite itself refuses the file
        sqlite3.connect(database).execute("SELECT COUNT(*) FROM entries").fetchone()

    metrics = Metrics()
    spool = open_spool(directory, metrics)
    with caplog.at_level(logging.INFO, logger="relay.spool"):
        await spool.start()
    try:
        salvaged = spool.pending()
        assert 0 < salvaged < 200
        recovered = await spool.take(200, 0.0)
        by_name = {e.event_id: e for e in originals}
        assert names(recovered) == sorted(names(recovered))  # oldest first, as before
        for e in recovered:
            original = by_name[e.event_id]
            assert (e.body, e.categories, e.target) == (original.body, original.categories, original.target)
        assert spool.pending_bytes() == 1500 * salvaged
        (summary,) = spool_records(caplog, logging.WARNING)
        assert (summary.__dict__["salvaged"], summary.__dict__["lost"]) == (salvaged, 200 - salvaged)
        assert corrupt_total(metrics) == 1
        assert spool.quarantined is not None and spool.quarantined.stat().st_size == size // 2
        for record in caplog.records:  # counts and paths only: no body, no event id
            assert "e0" not in str(record.__dict__) and "xxx" not in str(record.__dict__)
    finally:
        await spool.close()


async def test_damage_inside_the_file_loses_only_the_damaged_rows(tmp_path: Path) -> None:
    """Pages of zeros in the middle of a spool: every row before and after the damage is salvaged."""
    directory = tmp_path / "spool"
    await filled_file(directory, 300, size=1000)
    database = directory / "spool.db"
    with database.open("r+b") as f:  # wipe 8 pages a third of the way in
        page = 4096
        f.seek((database.stat().st_size // 3) // page * page)
        f.write(b"\0" * 8 * page)
    spool = open_spool(directory)
    await spool.start()
    try:
        assert spool.quarantined is not None
        recovered = names(await spool.take(300, 0.0))
        assert 250 < len(recovered) < 300
        assert recovered[0] == "e000" and recovered[-1] == "e299"
    finally:
        await spool.close()


async def test_sound_spool_is_left_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A valid spool file opens as it is: nothing moved, nothing counted, no error logged, every entry back."""
    directory = tmp_path / "spool"
    await filled_file(directory, 5, size=20)
    metrics = Metrics()
    spool = open_spool(directory, metrics)
    with caplog.at_level(logging.INFO, logger="relay.spool"):
        await spool.start()
    try:
        assert spool.quarantined is None
        assert sorted(p.name for p in directory.iterdir() if "corrupt" in p.name) == []
        assert names(await spool.take(10, 0.0)) == [f"e{i:03d}" for i in range(5)]
        assert corrupt_total(metrics) == 0
        assert spool_records(caplog, logging.ERROR) == []
    finally:
        await spool.close()


async def test_a_file_that_cannot_be_opened_is_not_taken_for_corrupt(tmp_path: Path) -> None:
    """An open error that is not corruption (here spool.db is a directory) still fails start(); nothing is moved."""
    directory = tmp_path / "spool"
    (directory / "spool.db").mkdir(parents=True)
    spool = open_spool(directory)
    with pytest.raises(sqlite3.OperationalError):
        await spool.start()
    assert sorted(p.name for p in directory.iterdir()) == ["spool.db"]


async def test_relay_starts_on_a_corrupt_spool_and_accepts_envelopes(
    tmp_path: Path, aiohttp_client: Any, upstream: FakeUpstream
) -> None:
    """Through the app: a garbage spool.db no longer stops the relay; it is ready, and envelopes get through."""
    directory = tmp_path / "spool"
    directory.mkdir()
    (directory / "spool.db").write_bytes(b"this is not a database" * 1000)
    config = make_config(upstream.url, spool=f"{{backend: sqlite, path: '{directory}', fsync: false}}")
    client = await aiohttp_client(create_app(config))
    assert (await client.get("/readyz")).status == 200
    body = envelope_bytes({"event_id": "1" * 32}, ({"type": "event"}, b'{"message": "x"}'))
    response = await client.post("/api/42/envelope/", data=body, headers=auth_header())
    assert response.status == 200
    await upstream.wait_for(1, timeout=3.0)
    assert [p.name for p in directory.iterdir() if CORRUPT_NAME.match(p.name)] != []
    assert state_of(client).spool.healthy
