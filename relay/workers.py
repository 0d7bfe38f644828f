"""`relay run --workers N`: a supervisor and N worker processes sharing one port (SO_REUSEPORT).

Each worker is a whole relay with its own spool partition (`<spool.path>/worker-<i>`); the kernel
spreads connections over them. The supervisor serves no traffic: it starts the workers, forwards
SIGTERM, SIGINT and SIGHUP to them, and restarts the ones that die.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from prometheus_client import Gauge

from . import eventloop
from .config import Config
from .logs import configure_logging, log_event
from .metrics import Metrics
from .spool.partitions import partition_config

logger = logging.getLogger("relay")

STABLE_AFTER = 10.0  # a worker that ran this long before dying restarts after the shortest delay
KILL_GRACE = 5.0  # past shutdown_timeout, the supervisor SIGKILLs workers that are still running
_READY = b"ready"
_STOPPING = b"stopping"


def restart_delay(failures: int, initial: float = 0.5, cap: float = 30.0) -> float:
    """Seconds to wait before restarting a worker after `failures` quick deaths in a row."""
    return float(min(cap, initial * 2 ** max(0, failures - 1)))


def check_workers(config: Config, count: int) -> list[str]:
    """Problems that stop `count` workers from sharing the listener (none with a single process)."""
    if count > 1 and config.listen.port == 0:
        return [f"{config.source}: listen.port: {count} workers need a fixed port (0 gives each its own port)"]
    return []


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """Which worker this process is, and its line to the supervisor."""

    index: int
    count: int
    channel: Connection  # messages go up; it closes (EOF) when the supervisor is gone

    def tell(self, message: bytes) -> None:
        """Send a message to the supervisor (ignored if it is gone)."""
        with contextlib.suppress(OSError):
            self.channel.send_bytes(message)

    def watch(self, loop: asyncio.AbstractEventLoop, gone: asyncio.Event) -> None:
        """Set `gone` when the supervisor dies, so an orphaned worker drains and exits."""

        def readable() -> None:
            loop.remove_reader(self.channel.fileno())
            log_event(logger, logging.WARNING, "supervisor gone, shutting down")
            gone.set()

        loop.add_reader(self.channel.fileno(), readable)  # the supervisor never writes: readable means EOF

    def unwatch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Stop watching the supervisor."""
        loop.remove_reader(self.channel.fileno())

    def expose(self, metrics: Metrics) -> None:
        """Add `relay_worker_info{worker="i"} 1`, so scrapes through the shared port can be told apart."""
        info = Gauge(
            "relay_worker_info",
            "The worker that answered this scrape (always 1).",
            ["worker"],
            registry=metrics.registry,
        )
        info.labels(str(self.index)).set(1)


class _WorkerField(logging.Filter):
    """Adds `worker: i` to every log record of a worker process."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.index
        return True


def _worker_main(config: Config, index: int, count: int, channel: Connection) -> None:
    """A worker process: the whole relay on the shared port, with its own spool partition."""
    configure_logging(config.log.level, config.log.format)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_WorkerField(index))
    from .server import serve  # not at the top: the server imports WorkerRole from here

    with contextlib.suppress(KeyboardInterrupt):
        eventloop.run(serve(config, WorkerRole(index, count, channel)))


@dataclass(slots=True)
class _Slot:
    """One worker position; its process is replaced when it dies."""

    index: int
    process: BaseProcess | None = None
    ready: bool = False  # this incarnation said it is ready (and has not begun to stop)
    ever_ready: bool = False  # some incarnation was ready: later deaths are restarted, not fatal
    started: float = 0.0


class Supervisor:
    """Starts N workers, forwards SIGTERM, SIGINT and SIGHUP to them, and restarts the ones that die."""

    def __init__(self, config: Config, count: int) -> None:
        self._config = config
        self._count = count
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state copied by fork
        self._slots = [_Slot(i) for i in range(count)]
        self._stopping = asyncio.Event()
        self._signal: int = signal.SIGTERM
        self._failed = False

    async def run(self) -> int:
        """Supervise until SIGTERM or SIGINT; 0 if every worker then stopped cleanly, else 1."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        log_event(logger, logging.INFO, "supervisor started", workers=self._count, pid=os.getpid())
        try:
            tasks = [loop.create_task(self._keep(slot), name=f"relay-worker-{slot.index}") for slot in self._slots]
            await self._stopping.wait()
            _, running = await asyncio.wait(tasks, timeout=self._config.shutdown_timeout + KILL_GRACE)
            if running:
                self._kill_all()
            clean = await asyncio.gather(*tasks)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
        code = 0 if all(clean) and not self._failed else 1
        log_event(logger, logging.INFO if code == 0 else logging.ERROR, "supervisor stopped", exit_code=code)
        return code

    def stop(self, signum: int) -> None:
        """Begin shutdown: forward the signal to every worker (each drains within shutdown_timeout)."""
        if self._stopping.is_set():
            return
        self._signal = signum
        self._stopping.set()
        log_event(logger, logging.INFO, "stopping workers", signal=signal.Signals(signum).name)
        for slot in self._slots:
            self._send(slot, signum)

    def reload(self) -> None:
        """Forward SIGHUP to the ready workers; one still starting loads the current rules anyway."""
        if self._stopping.is_set():
            return
        ready = [slot for slot in self._slots if slot.ready]
        log_event(logger, logging.INFO, "reloading rules in workers", workers=[slot.index for slot in ready])
        for slot in ready:
            self._send(slot, signal.SIGHUP)

    def _send(self, slot: _Slot, signum: int) -> None:
        if slot.process is not None and slot.process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(slot.process.pid, signum)

    def _kill_all(self) -> None:
        for slot in self._slots:
            if slot.process is not None:
                log_event(
                    logger,
                    logging.ERROR,
                    "worker still running after shutdown_timeout, killing it",
                    worker=slot.index,
                    pid=slot.process.pid,
                )
                self._send(slot, signal.SIGKILL)

    async def _keep(self, slot: _Slot) -> bool:
        """Keep one worker running until shutdown; True if it stopped cleanly."""
        failures = 0
        while True:
            try:
                code = await self._run_once(slot)
            except OSError as exc:  # could not even start it (out of processes or file descriptors)
                log_event(logger, logging.ERROR, "worker could not start", worker=slot.index, error=repr(exc))
                code = None
            if self._stopping.is_set():
                return self._stopped_cleanly(slot, code)
            if not slot.ever_ready:  # a worker that never came up is a start-up failure, as with one process
                log_event(logger, logging.ERROR, "worker failed to start", worker=slot.index, exit_code=code)
                self._failed = True
                self.stop(signal.SIGTERM)
                return False
            failures = 1 if time.monotonic() - slot.started >= STABLE_AFTER else failures + 1
            delay = restart_delay(failures)
            log_event(
                logger,
                logging.WARNING,
                "worker exited unexpectedly, restarting it",
                worker=slot.index,
                exit_code=code,
                restart_in=delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return True

    def _stopped_cleanly(self, slot: _Slot, code: int | None) -> bool:
        if code is None or code == 0:  # None: it could not be started, so there was nothing to stop
            return True
        if code == -self._signal and not slot.ready:  # stopped by our signal before its handlers were set
            log_event(logger, logging.INFO, "worker stopped while starting", worker=slot.index)
            return True
        log_event(logger, logging.ERROR, "worker did not stop cleanly", worker=slot.index, exit_code=code)
        return False

    async def _run_once(self, slot: _Slot) -> int | None:
        """Start one incarnation of the worker and wait for it to exit; its exit code."""
        loop = asyncio.get_running_loop()
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main,
            args=(self._config, slot.index, self._count, theirs),
            name=f"relay-worker-{slot.index}",
            daemon=True,  # if the supervisor itself fails, multiprocessing terminates (drains) the workers
        )
        try:
            process.start()
        finally:
            theirs.close()
        slot.process, slot.ready, slot.started = process, False, time.monotonic()
        log_event(logger, logging.INFO, "worker started", worker=slot.index, pid=process.pid)
        if self._stopping.is_set():  # shutdown began while it was being started
            self._send(slot, self._signal)
        exited: asyncio.Future[None] = loop.create_future()

        def on_exit() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(process.sentinel, on_exit)
        loop.add_reader(ours.fileno(), self._on_message, slot, ours)
        try:
            await exited
        finally:
            loop.remove_reader(process.sentinel)
            loop.remove_reader(ours.fileno())
            ours.close()
        process.join(1.0)
        code = process.exitcode
        log_event(logger, logging.INFO, "worker exited", worker=slot.index, pid=process.pid, exit_code=code)
        process.close()
        slot.process = None
        return code

    def _on_message(self, slot: _Slot, channel: Connection) -> None:
        try:
            message = channel.recv_bytes()
        except (EOFError, OSError):  # the worker is gone; its sentinel reports the exit
            asyncio.get_running_loop().remove_reader(channel.fileno())
            return
        pid = slot.process.pid if slot.process is not None else None
        if message == _READY:
            slot.ready = slot.ever_ready = True
            log_event(logger, logging.INFO, "worker ready", worker=slot.index, pid=pid)
        elif message == _STOPPING:
            slot.ready = False


def run_workers(config: Config, count: int) -> int:
    """Run `count` workers under a supervisor until SIGTERM or SIGINT; the process exit code."""
    cpus = os.cpu_count() or 1
    if count > cpus:
        log_event(
            logger, logging.WARNING, "more workers than CPUs; they will compete for them", workers=count, cpus=cpus
        )
    quotas = sum(len(project.quotas) for project in config.projects)
    if quotas and config.ratelimit.backend == "memory":
        log_event(
            logger,
            logging.WARNING,
            "ratelimit.backend is memory: each worker enforces every quota on its own, "
            "so together they allow up to N times the limit; use the redis backend to share quotas",
            workers=count,
            quotas=quotas,
        )
    if config.spool.backend == "sqlite":
        log_event(
            logger,
            logging.INFO,
            "spool partitions",
            paths=[partition_config(config, i, count).spool.path for i in range(count)],
        )
    return eventloop.run(Supervisor(config, count).run())
