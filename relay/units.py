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


def parse_duration(value: object) -> float:
    """Return seconds for `10s`, `250ms`, `1m`, `1h`, `1d` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f'expected a duration like "30s", got {value!r}')
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"expected a non-negative duration, got {value!r}")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    raise ValueError(f'expected a duration like "30s", got {value!r}')


def parse_size(value: object) -> int:
    """Return bytes for `512`, `64KiB`, `20MB`, `1GiB` and the like."""
    if isinstance(value, bool):
        raise ValueError(f'expected a size like "10MiB", got {value!r}')
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"expected a non-negative size, got {value!r}")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            unit = (match.group(2) or "").lower()
            return int(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f'expected a size like "10MiB", got {value!r}')


def format_size(size: int) -> str:
    """Render a byte count compactly, for messages and summaries."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
