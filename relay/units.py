"""Parsing of human-friendly durations ("250ms", "10s", "1h") and sizes ("1MiB")."""

from __future__ import annotations

import math

import regex

_DURATION = regex.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}

_SIZE = regex.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?[bB]?|[bB])?\s*$")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ki": 1024,
    "kib": 1024,
    "mi": 1024**2,
    "mib": 1024**2,
    "gi": 1024**3,
    "gib": 1024**3,
    "ti": 1024**4,
    "tib": 1024**4,
}


_MAX_DURATION = 100 * 365 * 86400.0  # a century: past it a duration is a typo (and past 1e308, not a float)


def parse_duration(value: object) -> float:
    """Return seconds for `10s`, `250ms`, `1m`, `1h`, `1d` or a bare number of seconds (at most a century)."""
    if isinstance(value, bool):
        raise ValueError(f'expected a duration like "30s", got {value!r}')
    if isinstance(value, int) and not -_MAX_DURATION <= value <= _MAX_DURATION:
        raise ValueError("expected a duration of at most 100 years, got a number that long")  # (never its digits)
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a non-negative duration, got {value!r}")
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f'expected a duration like "30s", got {str(value)[:40]!r}')
    if seconds > _MAX_DURATION:
        raise ValueError(f"expected a duration of at most 100 years, got {str(value)[:40]!r}")
    return seconds


def parse_size(value: object) -> int:
    """Return bytes for `512`, `64KiB`, `20MB`, `1GiB` and the like."""
    if isinstance(value, bool):
        raise ValueError(f'expected a size like "10MiB", got {value!r}')
    if isinstance(value, int):
        if not 0 <= value <= _MAX_SIZE:
            raise ValueError("expected a size from 0 to 1 EiB")  # (never a huge number's digits)
        return value
    if isinstance(value, str) and (match := _SIZE.match(value)):
        size = float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]
        if not size <= _MAX_SIZE:
            raise ValueError(f"expected a size of at most 1 EiB, got {value[:40]!r}")
        return int(size)
    raise ValueError(f'expected a size like "10MiB", got {str(value)[:40]!r}')


_MAX_SIZE = 2**60  # 1 EiB: past it a size is a typo (and past 1e308, not a float)


def format_size(size: int) -> str:
    """Render a byte count compactly, for messages and summaries."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
