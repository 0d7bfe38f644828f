"""A full disk: the reserve is spent on draining, envelopes are refused meanwhile (logged once), and taken again after.

Most tests here simulate SQLite's "database or disk is full" by monkeypatching operations; the last two fill
a real, tiny tmpfs (mounted in a user and mount namespace of their own, `unshare -rm`), and are skipped where
such a mount is not allowed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import relay.spool.sqlite as sqlite_module
from relay.errors import SpoolFull
from relay.spool import Entry, SqliteSpool
from relay.spool.partitions import adopt_orphans
from relay.spool.reserve import NAME, Reserve

from ..support import FakeClock
from .test_sqlite import entry, names

REPO = Path(__file__).resolve().parents[2]
RESERVE = 256 * 1024


def disk_full_error() -> sqlite3.OperationalError:
    """The error SQLite raises when a write finds no space (SQLITE_FULL)."""
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    return error


def spool_messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """Messages of the relay.spool logger at `level`."""
    return [r.getMessage() for r in caplog.records if r.name == "relay.spool" and r.levelno == level]


@pytest.fixture
async def spool(tmp_path: Path) -> AsyncIterator[SqliteSpool]:
    """A started spool in tmp_path/spool with a 256 KiB reserve, closed afterwards."""
    started = SqliteSpool(tmp_path / "spool", 10**9, 3600.0, False, FakeClock(), reserve=RESERVE)
    await started.start()
    yield started
    await started.close()


# -- the reserve file ---------------------------------------------------------------------


def test_reserve_allocates_real_blocks_and_releases_them(tmp_path: Path) -> None:
    """hold() allocates the whole size on disk (not a sparse file); release() deletes it."""
    reserve = Reserve(tmp_path, 1024 * 1024)
    assert reserve.hold()
    stat = (tmp_path / NAME).stat()
    assert stat.st_size == 1024 * 1024 and stat.st_blocks * 512 >= 1024 * 1024
    reserve.release()
    assert not (tmp_path / NAME).exists()


def test_reserve_without_room_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the disk has no room for the reserve, hold() says so and leaves no partial file."""

    def no_space(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    reserve = Reserve(tmp_path, 1024 * 1024)
    assert not reserve.hold()
    assert not (tmp_path / NAME).exists()


async def test_adopted_partition_leaves_no_reserve_behind(tmp_path: Path) -> None:
    """An orphaned worker partition, once adopted, is deleted with its reserve file (else its directory stays)."""
    root = tmp_path / "spool"
    orphan = SqliteSpool(root / "worker-1", 10**9, 3600.0, False, FakeClock(), reserve=RESERVE)
    await orphan.start()
    await orphan.push(entry(name="left"))
    await orphan.close()
    assert (root / "worker-1" / NAME).exists()
    into = SqliteSpool(root, 10**9, 3600.0, False, FakeClock(), reserve=RESERVE)
    await into.start()
    try:
        moved = await adopt_orphans(
            str(root), 1, into, lambda path: SqliteSpool(path, 10**9, 3600.0, False, FakeClock(), reserve=RESERVE)
        )
        assert moved == 1 and names(await into.take(5, 0.0)) == ["left"]
        assert not (root / "worker-1").exists()
    finally:
        await into.close()


# -- a full disk, simulated -------------------------------------------------------------------


async def test_full_disk_refuses_envelopes_as_one_logged_episode(
    tmp_path: Path, spool: SqliteSpool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The first insert that finds the disk full releases the reserve; pushes are refused without trying a write,
    logged once (no ERROR per envelope); once a drained entry frees room, the reserve is back and pushes succeed."""
    await spool.push(entry(name="held"))
    assert (tmp_path / "spool" / NAME).stat().st_size == RESERVE
    real_insert = sqlite_module._OPERATIONS["insert"]
    inserts: list[str | None] = []

    def full_insert(db: sqlite3.Connection, e: Entry) -> int:
        inserts.append(e.event_id)
        raise disk_full_error()

    monkeypatch.setitem(sqlite_module._OPERATIONS, "insert", full_insert)
    with caplog.at_level(logging.INFO, logger="relay.spool"):
        for i in range(6):
            with pytest.raises(SpoolFull, match="disk is full"):
                await spool.push(entry(name=f"refused{i}"))
        assert inserts == ["refused0"]  # the others were refused up front
        assert not (tmp_path / "spool" / NAME).exists()
        assert spool.pending() == 1

        monkeypatch.setitem(sqlite_module._OPERATIONS, "insert", real_insert)
        await spool.ack(await spool.take(1, 0.0))  # a drain step: room again, so the reserve is held again
        assert (tmp_path / "spool" / NAME).exists()
        await spool.push(entry(name="accepted"))
    assert spool_messages(caplog, logging.ERROR) == []
    assert spool_messages(caplog, logging.WARNING) == [
        "spool disk is full: reserve released for draining, envelopes refused until there is room",
        "spool full: refusing envelopes",
    ]
    (again,) = [r for r in caplog.records if r.getMessage() == "spool accepts envelopes again"]
    assert (again.__dict__["reason"], again.__dict__["refused"]) == ("disk_full", 6)
    assert names(await spool.take(5, 0.0)) == ["accepted"]


async def test_deletes_that_need_the_reserve_get_it(
    tmp_path: Path, spool: SqliteSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ack that fails for want of space is retried once the reserve is released: the spool drains."""
    await spool.push(entry(name="a"))
    reserve = tmp_path / "spool" / NAME
    real_delete = sqlite_module._OPERATIONS["delete"]
    attempts: list[bool] = []

    def delete_needing_room(db: sqlite3.Connection, ids: list[int]) -> None:
        attempts.append(reserve.exists())
        if reserve.exists():  # the disk is full as long as the reserve holds the last free space
            raise disk_full_error()
        real_delete(db, ids)

    monkeypatch.setitem(sqlite_module._OPERATIONS, "delete", delete_needing_room)
    await spool.ack(await spool.take(1, 0.0))
    assert attempts == [True, False]
    assert spool.pending() == 0


async def test_a_failed_ack_leaves_entries_to_be_taken_again(
    spool: SqliteSpool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries whose ack failed are still on disk: they are handed out again instead of staying in flight."""
    await spool.push(entry(name="a"))

    def failing_delete(db: sqlite3.Connection, ids: list[int]) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    taken = await spool.take(1, 0.0)
    monkeypatch.setitem(sqlite_module._OPERATIONS, "delete", failing_delete)
    with pytest.raises(SpoolFull):
        await spool.ack(taken)
    assert names(await spool.take(1, 0.0)) == ["a"]


async def test_housekeeping_gives_free_pages_back(tmp_path: Path, spool: SqliteSpool) -> None:
    """After a backlog drains, a housekeeping pass shrinks the database by thousands of pages, not by one."""
    for i in range(300):
        await spool.push(entry(8000, f"e{i}"))
    while spool.pending():
        await spool.ack(await spool.take(100, 0.0))
    db = sqlite3.connect(tmp_path / "spool" / "spool.db")
    try:
        before = db.execute("PRAGMA page_count").fetchone()[0]
        await spool._call("housekeep", None)
        after = db.execute("PRAGMA page_count").fetchone()[0]
    finally:
        db.close()
    assert before > 600 and after < 50


# -- a full disk, for real ---------------------------------------------------------------------


def run_in_tiny_filesystem(tmp_path: Path, script: str, size: str) -> dict[str, Any]:
    """Run `script` (Python) with a fresh tmpfs of `size` at argv[1], in namespaces of its own; its JSON output."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not available")
    mount = tmp_path / "tiny"
    mount.mkdir()
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=1m none "$0"', str(mount)], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip(f"a tmpfs can't be mounted here: {probe.stderr.decode(errors='replace').strip()}")
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script))
    arguments = [str(mount), sys.executable, str(path)]
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f'mount -t tmpfs -o size={size} none "$0" && exec "$1" "$2" "$0"', *arguments],
        capture_output=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    return json.loads(result.stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


SPOOL_SCRIPT = """
    import asyncio, json, logging, os, sys, time
    from pathlib import Path
    from relay.clock import SystemClock
    from relay.errors import SpoolFull
    from relay.routing import Target
    from relay.spool import Entry, SqliteSpool

    class Records(logging.Handler):
        def __init__(self):
            super().__init__()
            self.seen = []
        def emit(self, record):
            self.seen.append([record.levelname, record.getMessage()])

    def envelope():
        return Entry(Target("https://sentry.example", "1", "k" * 32), os.urandom(200_000), ("error",), time.time())

    async def main(root):
        records = Records()
        logging.getLogger("relay.spool").addHandler(records)
        logging.getLogger("relay.spool").setLevel(logging.INFO)
        spool = SqliteSpool(root / "spool", 10**12, 3600.0, False, SystemClock(), reserve=4 * 1024 * 1024)
        await spool.start()
        accepted, refusals = 0, []
        while len(refusals) < 5:
            try:
                await spool.push(envelope())
                accepted += 1
            except SpoolFull as exc:
                refusals.append(str(exc))
        drained = 0
        while spool.pending():
            batch = await asyncio.wait_for(spool.take(1, 0.0), 5)
            await spool.ack(batch)
            drained += len(batch)
        after = 0
        for _ in range(5):
            await spool.push(envelope())
            after += 1
        await spool.close()
        print(json.dumps({"accepted": accepted, "refusals": refusals, "drained": drained, "after": after,
                          "logs": records.seen, "reserve": (root / "spool" / "spool.reserve").exists()}))

    asyncio.run(main(Path(sys.argv[1])))
"""


def test_real_full_disk_drains_and_accepts_again(tmp_path: Path) -> None:
    """On a 24 MiB tmpfs filled to ENOSPC with 200 KB envelopes: refused, then every entry drains (which needs the
    reserve: deleting writes to the WAL first), the reserve comes back and envelopes are accepted again."""
    result = run_in_tiny_filesystem(tmp_path, SPOOL_SCRIPT, "24m")
    assert result["accepted"] > 50
    assert set(result["refusals"]) == {"the spool's disk is full"}
    assert result["drained"] == result["accepted"]
    assert result["after"] == 5 and result["reserve"]
    logs = [tuple(r) for r in result["logs"]]
    assert ("ERROR", "spool operations failed") not in logs
    assert logs.count(("WARNING", "spool full: refusing envelopes")) == 1


RELAY_SCRIPT = """
    import asyncio, json, logging, sys, uuid
    from pathlib import Path
    import aiohttp, orjson
    from aiohttp import web
    from relay.app import create_app
    from relay.ingest import STATE
    from tests.forward.test_outage import OUTAGE, sqlite_relay_config
    from tests.support import KEY, FakeUpstream, Reply, auth_header, envelope_bytes

    class Records(logging.Handler):
        def __init__(self):
            super().__init__()
            self.seen = []
        def emit(self, record):
            self.seen.append([record.name, record.levelname, record.getMessage()])

    def envelope(event_id):
        return envelope_bytes({"event_id": event_id, "dsn": f"http://{KEY}@relay/42"},
                              ({"type": "event"}, orjson.dumps({"message": "m" * 100_000})))

    async def main(root):
        records = Records()
        logging.getLogger().addHandler(records)
        logging.getLogger("relay").setLevel(logging.INFO)
        upstream = FakeUpstream()
        upstream.script = [Reply(503)] * 1_000_000  # down
        up = web.AppRunner(upstream.app())
        await up.setup()
        await web.TCPSite(up, "127.0.0.1", 0).start()
        upstream.url = f"http://127.0.0.1:{up.addresses[0][1]}"
        app = create_app(sqlite_relay_config(upstream.url, root / "spool", OUTAGE))
        state = app[STATE]
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/api/42/envelope/"
        statuses, accepted = [], set()
        async with aiohttp.ClientSession() as http:
            async def post():
                event_id = uuid.uuid4().hex
                async with http.post(url, data=envelope(event_id), headers=auth_header()) as response:
                    statuses.append(response.status)
                    if response.status == 200:
                        accepted.add(event_id)
                    return response.status
            while statuses.count(503) < 5 and len(statuses) < 2000:
                await post()
            filled = len(accepted)
            upstream.script.clear()  # the upstream is back
            for _ in range(600):
                if not state.spool.pending():
                    break
                await asyncio.sleep(0.1)
            pending = state.spool.pending()
            after = await post()
            for _ in range(300):
                delivered = {r.envelope.event_id for r in upstream.received if r.envelope.event_id}
                if delivered >= accepted:
                    break
                await asyncio.sleep(0.1)
        await runner.cleanup()
        await up.cleanup()
        print(json.dumps({"filled": filled, "statuses": sorted(set(statuses)), "pending": pending, "after": after,
                          "lost": len(accepted - delivered), "unexpected": len(delivered - accepted),
                          "logs": records.seen}))

    asyncio.run(main(Path(sys.argv[1])))
"""


def test_relay_on_a_real_full_disk_answers_503_then_drains_when_the_upstream_is_back(tmp_path: Path) -> None:
    """Through the app (default reserve) on a 32 MiB tmpfs, upstream down: envelopes fill the disk until 503s; once
    the upstream is back every accepted envelope is delivered and the relay answers 200 again."""
    result = run_in_tiny_filesystem(tmp_path, RELAY_SCRIPT, "32m")
    assert result["filled"] > 50
    assert result["statuses"] == [200, 503]
    assert result["pending"] == 0
    assert result["after"] == 200
    assert (result["lost"], result["unexpected"]) == (0, 0)  # every 200 delivered, nothing refused delivered
    spool_logs = [(level, message) for name, level, message in result["logs"] if name == "relay.spool"]
    assert ("ERROR", "spool operations failed") not in spool_logs
    assert spool_logs.count(("WARNING", "spool full: refusing envelopes")) == 1
