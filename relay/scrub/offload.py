"""Scrubbing very large envelopes in a low-priority child process, so they never hold up small ones.

A 1 MB frame-vars dump takes about a second of pure-Python work. On a worker thread it would still
compete for the GIL with the event loop; in a child process at a lower scheduling priority (nice 10)
the kernel hands the core to the event loop whenever it has work. The child compiles exactly the rule
texts the parent's current registry was built from (sent with each job), so a rule reload reaches it
without reading the files again: an envelope is still scrubbed by the old rules or the new ones.

The same child checks large JSON payloads for ingest validation (`check_json`), so the parent never
parses a large payload at all on the default path. Items cross in both directions as bytes only
(`Item.bare`): the parsed tree would cost the parent more to unpickle than to parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import heap
from ..config import Config
from ..coredumps import forbid_core_dumps
from ..envelope import Envelope, Item, JsonSummary, summarize_payloads
from ..errors import RelayError
from ..logs import configure_logging
from .audit import ScrubReport
from .items import scrub_envelope
from .registry import ScrubberRegistry

NICE = 10
# Items above this size are checked and scrubbed in the child: below it, parsing and scrubbing on the event
# loop costs less than a round trip to a process that may be busy with a large envelope already.
LARGE_BYTES = 256 * 1024

A = TypeVar("A")
R = TypeVar("R")


@dataclass(slots=True)
class Job:
    """One envelope's items, with everything the child needs to scrub them as the parent would."""

    config: Config
    texts: dict[str, tuple[str, str]]
    generation: int
    project_id: int
    items: list[Item]
    headers: dict[str, Any]  # the envelope header, scrubbed with the items
    forward_unscannable: bool
    report: bool


@dataclass(slots=True)
class Result:
    """The scrubbed items and envelope header, and what failed or can't be scanned, by index."""

    items: list[Item]
    headers: dict[str, Any]
    failed: list[int] = field(default_factory=list)
    unscannable: list[int] = field(default_factory=list)
    report: ScrubReport | None = None


_compiled: dict[int, ScrubberRegistry] = {}  # in the child: the rules of the newest generation seen


def _child_priority() -> int | None:
    """The child's nice value: NICE above this process's own (None where priorities can't be read)."""
    try:
        return min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE)
    except (OSError, AttributeError):
        return None


def _set_priority(pid: int, priority: int | None) -> None:
    if priority is not None:
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, pid, priority)


class _NicedProcess(multiprocessing.context.SpawnProcess):
    """A spawned process niced by the parent as soon as it exists: its start-up (importing the relay and
    its dependencies, a few hundred milliseconds of CPU) then yields the core to the event loop too."""

    def start(self) -> None:
        super().start()
        if self.pid is not None:
            _set_priority(self.pid, _child_priority())


class _NicedContext(multiprocessing.context.SpawnContext):
    Process = _NicedProcess


def _start_child(level: str, fmt: str, priority: int | None, core_dumps: bool = False) -> None:
    """Lower this process's priority (if the parent couldn't), log like the parent and, unless opted in, dump no
    core (a spawned process is dumpable again: relay.coredumps)."""
    _set_priority(0, priority)
    configure_logging(level, fmt)
    heap.tune_malloc()
    if not core_dumps:
        forbid_core_dumps()


def scrub_job(job: Job) -> Result:
    """Scrub a job's items (runs in the child)."""
    registry = _compiled.get(job.generation)
    if registry is None:
        _compiled.clear()
        registry = _compiled[job.generation] = ScrubberRegistry(job.config, texts=job.texts)
        heap.settle()  # compiled rules live on in this child (relay.heap)
    project = job.config.project(job.project_id)
    report = ScrubReport() if job.report else None
    envelope = Envelope(job.headers, job.items)
    failed, unscannable = scrub_envelope(
        envelope, job.forward_unscannable, registry.for_project(project), registry.auditor_for(project), report
    )
    index = {id(item): position for position, item in enumerate(envelope.items)}
    return Result(
        [item.bare() for item in envelope.items],
        envelope.headers,
        [index[id(item)] for item in failed],
        [index[id(item)] for item in unscannable],
        report,
    )


def make_pool(config: Config) -> ProcessPoolExecutor:
    """One spawned child for large envelopes (spawned, not forked: the parent runs threads)."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=_NicedContext(),
        initializer=_start_child,
        initargs=(config.log.level, config.log.format, _child_priority(), config.core_dumps),
    )


class ChildTimeout(RelayError):
    """A call into the scrubbing child ran past its bound; the child was killed."""


class ChildProcess:
    """The child large payloads go to, started on first use; a failed call drops it, the next one starts anew.

    Calls raise whatever went wrong (no child, a dead child, a bug): each caller then does the work itself,
    on the event loop or a thread, so nothing is lost when the child can't be used.
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self.pool: ProcessPoolExecutor | None = None

    async def call(self, function: Callable[[A], R], argument: A, timeout: float | None = None) -> R:
        """`function(argument)` in the child; past `timeout` seconds the child is killed (the next call starts a new
        one) and ChildTimeout raised."""
        pool = self.pool
        if pool is None:
            pool = self.pool = make_pool(self._config)
        try:
            return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(pool, function, argument), timeout)
        except TimeoutError:
            self._drop(pool, kill=True)
            raise ChildTimeout(f"the scrubbing child took longer than {timeout:g}s: killed") from None
        except Exception:
            self._drop(pool)
            raise

    def _drop(self, pool: ProcessPoolExecutor, kill: bool = False) -> None:
        if self.pool is pool:  # not one a concurrent call has started since
            self.pool = None
        if kill:  # a stuck child: shutdown() would wait for it; its work is abandoned
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    async def check_json(self, payloads: list[bytes]) -> list[JsonSummary]:
        """Parse and summarize large JSON payloads in the child (ingest validation without the parse)."""
        return await self.call(summarize_payloads, payloads)

    def close(self) -> None:
        """Stop the child after the work it has; idempotent."""
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=True)


__all__ = ["LARGE_BYTES", "NICE", "ChildProcess", "ChildTimeout", "Job", "Result", "make_pool", "scrub_job"]
