"""`sent_at` moved on by the time an envelope spent in the relay before it is forwarded.

Sentry compares an envelope's `sent_at` with the time it arrives, and shifts the timestamps of its events by
the difference (an SDK on a device with a wrong clock). An envelope that waited in the spool (an upstream
outage, a backlog) would show that wait as clock skew, and its events would be moved to the time they were
forwarded. The SDK's own skew is kept: `sent_at` goes forward by exactly the time held here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

# Shorter waits are left alone: Sentry ignores a skew this small, and the body then needs no rewrite.
MIN_HELD = 1.0


def redated(body: bytes, received_at: float, now: float) -> bytes:
    """The envelope with `sent_at` plus the seconds since `received_at` (unchanged if it has none, or held
    less than MIN_HELD, or its `sent_at` isn't a timestamp)."""
    held = now - received_at
    end = body.find(b"\n")
    header_line = body if end < 0 else body[:end]
    if held < MIN_HELD or b'"sent_at"' not in header_line:
        return body
    try:
        headers = orjson.loads(header_line)
    except orjson.JSONDecodeError:
        return body
    sent = headers.get("sent_at") if isinstance(headers, dict) else None
    when = _parse(sent)
    if when is None:
        return body
    try:
        headers["sent_at"] = _format(when + timedelta(seconds=held))
    except OverflowError:  # a sent_at near year 9999: left as the SDK wrote it
        return body
    return orjson.dumps(headers) + (b"" if end < 0 else body[end:])


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _format(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


__all__ = ["MIN_HELD", "redated"]
