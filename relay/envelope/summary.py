"""What ingest validation reads from a JSON payload, small enough to send between processes.

Parsing a 1 MB payload takes the event loop 10 ms or more (object creation, then the garbage collector
walking what was created). Large payloads are summarized in the low-priority child process instead
(see scrub.offload), and only this summary comes back: the parsed tree itself never does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class JsonSummary:
    """Whether a payload parses, whether it is an object, and its top-level `event_id` (raw, if it is one)."""

    error: str | None = None  # the parser's reason when the payload is not JSON
    is_object: bool = False
    event_id: Any = None  # absent and `null` alike are None; anything else is kept for the caller to judge


def summarize(value: Any) -> JsonSummary:
    """The summary of an already parsed payload."""
    if isinstance(value, dict):
        return JsonSummary(is_object=True, event_id=value.get("event_id"))
    return JsonSummary()


def summarize_json(payload: bytes) -> JsonSummary:
    """Parse a payload and summarize it (what the child process runs for each large item)."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return JsonSummary(error=exc.msg)
    return summarize(value)


def summarize_payloads(payloads: list[bytes]) -> list[JsonSummary]:
    """`summarize_json` for each payload, in order: one job for all of an envelope's large items."""
    return [summarize_json(payload) for payload in payloads]


__all__ = ["JsonSummary", "summarize", "summarize_json", "summarize_payloads"]
