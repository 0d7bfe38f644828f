"""The optional audit log: one JSON line per redaction, with where and why, and never the value."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson

from ..logs import log_event
from .audit import Redaction

logger = logging.getLogger("relay.scrub")


class AuditLog:
    """Appends redaction records to a file (created on first use, line-buffered)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._file: IO[bytes] | None = None
        self._failed = False

    def write(self, project: int, event_id: str | None, redactions: list[Redaction], *, audit: bool = False) -> None:
        """Record redactions of one envelope; a failing disk is logged once, never fatal to traffic."""
        if not redactions or self._failed:
            return
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        mode = "audit" if audit else "enforce"
        lines = b"".join(
            orjson.dumps(
                {
                    "ts": stamp,
                    "project": project,
                    "event_id": event_id,
                    "item_type": r.item_type,
                    "path": r.path,
                    "rule": r.rule,
                    "action": r.action,
                    "mode": mode,
                }
            )
            + b"\n"
            for r in redactions
        )
        try:
            if self._file is None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self._path, "ab")  # noqa: SIM115 (kept open for the relay's lifetime)
            self._file.write(lines)
            self._file.flush()
        except OSError as exc:
            self._failed = True
            log_event(logger, logging.ERROR, "audit log unwritable, audit records dropped", error=str(exc))

    def close(self) -> None:
        """Close the file; idempotent."""
        file, self._file = self._file, None
        if file is not None:
            file.close()
