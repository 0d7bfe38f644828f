"""`relay scrub`: scrub JSON events offline, one per line, with exactly the server's engine and rules."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import IO

import orjson

from ..config import Config
from .engine import ScrubError
from .items import scrub_event
from .registry import ScrubberRegistry


def scrub_lines(config: Config, project_id: int | None, lines: Iterable[bytes], out: IO[bytes], err: IO[str]) -> int:
    """Scrub each JSON line to `out`; bad lines are reported on `err` and never echoed. Returns the exit code."""
    project = config.project(project_id) if project_id is not None else None
    scrubber = ScrubberRegistry(config).for_project(project)
    show_progress = err.isatty()
    failures = 0
    started = last = time.monotonic()
    count = 0
    write = out.write
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = orjson.loads(line)
            if not isinstance(event, dict):
                raise ScrubError("not a JSON object")
            write(orjson.dumps(scrub_event(scrubber, event)) + b"\n")
        except (orjson.JSONDecodeError, ScrubError) as exc:
            failures += 1
            err.write(f"line {number}: skipped (not written): {exc}\n")
        count += 1
        if show_progress and count % 1000 == 0 and time.monotonic() - last > 0.5:
            last = time.monotonic()
            err.write(f"\r{count} events, {count / (last - started):,.0f}/s")
            err.flush()
    if show_progress:
        err.write(f"\r{count} events scrubbed in {time.monotonic() - started:.1f}s\n")
    return 1 if failures else 0


def run_scrub(config: Config, project_id: int | None, path: str) -> int:
    """Open the input (a file or `-` for stdin) and scrub it to stdout."""
    source = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        return scrub_lines(config, project_id, source, sys.stdout.buffer, sys.stderr)
    finally:
        if source is not sys.stdin.buffer:
            source.close()
        sys.stdout.flush()


__all__ = ["run_scrub", "scrub_lines"]
