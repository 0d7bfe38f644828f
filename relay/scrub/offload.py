"""Scrubbing very large envelopes in a low-priority child process, so they never hold up small ones.

A 1 MB frame-vars dump takes about a second of pure-Python work. On a worker thread it would still
compete for the GIL with the event loop; in a child process at a lower scheduling priority (nice 10)
the kernel hands the core to the event loop whenever it has work. The child compiles exactly the rule
texts the parent's current registry was built from (sent with each job), so a rule reload reaches it
without reading the files again: an envelope is still scrubbed by the old rules or the new ones.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..config import Config
from ..envelope import Envelope, Item
from ..logs import configure_logging
from .audit import ScrubReport
from .items import scrub_envelope
from .registry import ScrubberRegistry

NICE = 10


@dataclass(slots=True)
class Job:
    """One envelope's items, with everything the child needs to scrub them as the parent would."""

    config: Config
    texts: dict[str, tuple[str, str]]
    generation: int
    project_id: int
    items: list[Item]
    trace: Any
    forward_unscannable: bool
    report: bool


@dataclass(slots=True)
class Result:
    """The scrubbed items, the trace header (None: dropped), and what failed or can't be scanned, by index."""

    items: list[Item]
    trace: Any
    failed: list[int] = field(default_factory=list)
    unscannable: list[int] = field(default_factory=list)
    report: ScrubReport | None = None


_compiled: dict[int, ScrubberRegistry] = {}  # in the child: the rules of the newest generation seen


def _start_child(level: str, fmt: str) -> None:
    """Lower this process's priority and log like the parent."""
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICE)
    configure_logging(level, fmt)


def scrub_job(job: Job) -> Result:
    """Scrub a job's items (runs in the child)."""
    registry = _compiled.get(job.generation)
    if registry is None:
        _compiled.clear()
        registry = _compiled[job.generation] = ScrubberRegistry(job.config, texts=job.texts)
    project = job.config.project(job.project_id)
    report = ScrubReport() if job.report else None
    envelope = Envelope({"trace": job.trace} if job.trace is not None else {}, job.items)
    failed, unscannable = scrub_envelope(
        envelope, job.forward_unscannable, registry.for_project(project), registry.auditor_for(project), report
    )
    index = {id(item): position for position, item in enumerate(envelope.items)}
    return Result(
        envelope.items,
        envelope.headers.get("trace"),
        [index[id(item)] for item in failed],
        [index[id(item)] for item in unscannable],
        report,
    )


def make_pool(config: Config) -> ProcessPoolExecutor:
    """One spawned child for large envelopes (spawned, not forked: the parent runs threads)."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_child,
        initargs=(config.log.level, config.log.format),
    )


__all__ = ["NICE", "Job", "Result", "make_pool", "scrub_job"]
