"""The processes under test: started pinned to cores, watched through /proc, stopped with SIGTERM.

CPU time is utime + stime from /proc/<pid>/stat summed over the process and its descendants (so a
relay with worker processes is measured whole; threads are included by the kernel). Peak memory
is VmHWM from /proc/<pid>/status.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from loadgen import get

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
RELAY = str(Path(sys.executable).with_name("relay"))  # the venv's console script


def free_port() -> int:
    """A port nobody listens on right now (the relay needs it in its config before it starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# The cores this process may use when it starts, before the benchmark pins itself to one of them.
USABLE_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def affinity_available() -> bool:
    """Whether this machine lets processes be pinned to cores, and has two of them."""
    return hasattr(os, "sched_setaffinity") and len(USABLE_CPUS) >= 2


def pin(pid: int, cpus: Iterable[int] | None) -> None:
    """Pin a process and its descendants (None: every usable core)."""
    target = set(cpus) if cpus is not None else set(USABLE_CPUS)
    for each in _tree(pid):
        with contextlib.suppress(OSError):  # it exited meanwhile
            os.sched_setaffinity(each, target)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces


def _tree(pid: int) -> list[int]:
    """`pid` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _machine_jiffies() -> tuple[int, int]:
    """(busy, stolen) jiffies over all cores since boot, from the `cpu` line of /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq, steal


class LoadMeter:
    """How much CPU the rest of the machine used while we measured (the machine is shared).

    `other_cores`: busy CPU time not spent by the benchmark's own processes, in cores (0.5 = half
    a core busy with someone else's work on average); `steal_cores`: time the hypervisor took.
    """

    def __init__(self, servers: list[Server]) -> None:
        self.servers = list(servers)
        self._start = (0.0, 0, 0, 0.0)

    def _ours(self) -> float:
        own = _stat(os.getpid())
        mine = (int(own[11]) + int(own[12])) / TICKS if own else 0.0
        return mine + sum(server.cpu_seconds() for server in self.servers)

    def start(self) -> None:
        busy, steal = _machine_jiffies()
        self._start = (time.monotonic(), busy, steal, self._ours())

    def stop(self) -> dict[str, float]:
        began, busy0, steal0, ours0 = self._start
        busy, steal = _machine_jiffies()
        seconds = max(1e-9, time.monotonic() - began)
        other = (busy - busy0) / TICKS - (self._ours() - ours0)
        stolen = (steal - steal0) / TICKS
        return {"other_cores": round(max(0.0, other) / seconds, 2), "steal_cores": round(stolen / seconds, 2)}


class Server:
    """A child process serving HTTP on a known port, optionally pinned to cores."""

    def __init__(self, name: str, command: list[str], port: int, log: Path, cpus: set[int] | None) -> None:
        self.name = name
        self.port = port
        self.log = log
        self.pinning = "none"
        preexec = None
        if affinity_available():
            if cpus is not None and shutil.which("taskset"):
                command = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *command]
                self.pinning = f"taskset -c {','.join(map(str, sorted(cpus)))}"
            else:
                # Unpinned means every core: a child would otherwise inherit this process's own pinning.
                allowed = set(cpus) if cpus is not None else set(USABLE_CPUS)

                def preexec() -> None:
                    os.sched_setaffinity(0, allowed)

                if cpus is not None:
                    self.pinning = f"sched_setaffinity {sorted(cpus)}"
        self.command = command
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, preexec_fn=preexec, cwd=ROOT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def ready(self, path: str, timeout: float = 30.0) -> None:
        """Wait until `GET path` answers 200; SystemExit with the log's tail if the process dies first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                status, _ = await get(self.port, path)
                if status == 200:
                    return
            except OSError:
                pass
            await asyncio.sleep(0.05)
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        self.stop()
        raise SystemExit(f"{self.name} did not become ready (exit code {self.proc.poll()}):\n{tail}")

    def cpu_seconds(self) -> float:
        """utime + stime of the process tree so far."""
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """(utime, stime) of the process tree so far, in seconds."""
        user = system = 0
        for pid in _tree(self.pid):
            fields = _stat(pid)
            if fields is not None:
                user += int(fields[11])
                system += int(fields[12])
        return user / TICKS, system / TICKS

    def peak_rss_kib(self) -> dict[str, int]:
        """VmHWM of the largest process in the tree, the sum over the tree, and how many processes."""
        peaks = []
        for pid in _tree(self.pid):
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]))
        return {"max": max(peaks, default=0), "sum": sum(peaks), "processes": len(peaks)}

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (the relay drains), then SIGKILL after `timeout`; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait()


def python(script: str, *args: str) -> list[str]:
    """A command running one of the bench scripts with this interpreter."""
    return [sys.executable, str(BENCH / script), *args]


def relay_command(config: Path, workers: int | None) -> list[str]:
    """`relay run --config FILE` (with `--workers N` when asked)."""
    command = [RELAY, "run", "--config", str(config)]
    return command + (["--workers", str(workers)] if workers is not None else [])


def relay_supports_workers() -> bool:
    """Whether `relay run` has a `--workers` option in this checkout."""
    out = subprocess.run([RELAY, "run", "--help"], capture_output=True, text=True, cwd=ROOT)
    return "--workers" in out.stdout


RELAY_CONFIG = """\
# written by bench/perf.py: production defaults (rule packs, durable spool with fsync) toward a fake upstream
listen: {{host: 127.0.0.1, port: {port}}}
upstream:
  url: http://127.0.0.1:{upstream_port}
projects:
  - id: {project}
    keys: ["{key}"]
    upstream_dsn: "http://{upstream_key}@127.0.0.1:{upstream_port}/{upstream_project}"
rules: [secrets, pii]
spool: {{backend: sqlite, path: "{spool}", fsync: true}}
"""
