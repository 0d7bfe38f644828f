"""Processes on the tier's hosts: started with `ip netns exec`, their JSON-line stdout collected, stderr in a file."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .netns import Topology

Record = dict[str, Any]


@dataclass
class HostProcess:
    """One program on one host, and the JSON lines it printed."""

    name: str
    proc: asyncio.subprocess.Process
    log: Path
    records: list[Record] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        """Collect stdout's JSON lines (other lines are ignored)."""
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(line)
                if isinstance(record, dict):
                    self.records.append(record)

    async def wait_for(self, match: Callable[[Record], bool], what: str, timeout: float) -> Record:
        """The first record that matches, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((r for r in self.records if match(r)), None)
            if found is not None:
                return found
            if self.proc.returncode is not None or time.monotonic() > deadline:
                state = "exited" if self.proc.returncode is not None else "timed out"
                raise AssertionError(f"{self.name} {state} waiting for {what}; its stderr:\n{self.tail()}")
            await asyncio.sleep(0.02)

    def say(self, line: str) -> None:
        """Write a line to the program's stdin."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")

    def tail(self, lines: int = 30) -> str:
        """The end of the program's stderr."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def logged(self) -> list[Record]:
        """The program's stderr, read as JSON-line logs (a relay's)."""
        found = []
        with contextlib.suppress(OSError):
            for line in self.log.read_text(errors="replace").splitlines():
                with contextlib.suppress(orjson.JSONDecodeError):
                    record = orjson.loads(line)
                    if isinstance(record, dict):
                        found.append(record)
        return found


class Hosts:
    """Starts programs on the topology's hosts and stops every one of them at the end."""

    def __init__(self, topology: Topology, directory: Path) -> None:
        self.topology = topology
        self.directory = directory
        self.started: list[HostProcess] = []

    async def spawn(
        self,
        name: str,
        host: str,
        argv: list[str],
        *,
        cwd: Path | None = None,
        stdin: bool = False,
        env: dict[str, str] | None = None,
    ) -> HostProcess:
        """Run `argv` on `host`; stdout is collected as JSON lines, stderr goes to `<directory>/<name>.log`."""
        log = self.directory / f"{name}.log"
        # util-linux's setpriv makes the program die with the test process, even a SIGKILLed one (it and `ip netns
        # exec` exec in turn, so the death signal is the program's own); the namespaces are reaped by the next run.
        setpriv = shutil.which("setpriv")
        guard = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        with log.open("wb") as stderr:
            proc = await asyncio.create_subprocess_exec(
                *guard,
                *self.topology.exec_argv(host, argv),
                cwd=str(cwd or self.directory),
                env=env,
                stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        process = HostProcess(name, proc, log)
        process.reader = asyncio.create_task(process.read(), name=f"tier-read-{name}")
        self.started.append(process)
        return process

    async def stop_all(self) -> None:
        """SIGKILL every program still running and wait for it; idempotent."""
        for process in self.started:
            if process.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.proc.kill()
        for process in self.started:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.proc.wait(), 10)
            if process.reader is not None:
                process.reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await process.reader
        self.started.clear()


__all__ = ["HostProcess", "Hosts", "Record"]
