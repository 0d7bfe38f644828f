"""Config value parsers: each returns the parsed value or raises ValueError with a message fit for users."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

import regex

from ..units import parse_duration, parse_size

E = TypeVar("E", bound=StrEnum)
_PUBLIC_KEY = regex.compile(r"^[0-9a-zA-Z_-]{1,64}$")


def string(value: Any) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError(f"expected a string, got {value!r}")
    return str(value)


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    raise ValueError(f"expected true or false, got {value!r}")


def int_range(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"expected an integer, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
        if not low <= number <= high:
            raise ValueError(f"expected an integer from {low} to {high}, got {number}")
        return number

    return parse


def float_min(low: float) -> Callable[[Any], float]:
    def parse(value: Any) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {value!r}") from None
        if number < low:
            raise ValueError(f"expected a number of at least {low}, got {number}")
        return number

    return parse


def positive_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero, got {value!r}")
    return seconds


def positive_size(value: Any) -> int:
    size = parse_size(value)
    if size <= 0:
        raise ValueError(f"expected a size above zero, got {value!r}")
    return size


def one_of(*choices: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return parse


def choice(enum: type[E]) -> Callable[[Any], E]:
    def parse(value: Any) -> E:
        try:
            return enum(value)
        except ValueError:
            raise ValueError(f"expected one of {', '.join(e.value for e in enum)}, got {value!r}") from None

    return parse


def string_list(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"expected a list of strings, got {value!r}")
    return tuple(value)


def phone_regions(value: Any) -> tuple[str, ...]:
    """ISO 3166 region codes libphonenumber knows (`scrub.phone_regions`)."""
    import phonenumbers

    regions = tuple(r.upper() for r in string_list(value))
    unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(f"expected region codes like DE, BR or JP, got {', '.join(map(repr, unknown))}")
    return regions


def key_list(value: Any) -> tuple[str, ...]:
    keys = string_list(value)
    for key in keys:
        if not _PUBLIC_KEY.match(key):
            raise ValueError(f"expected public keys (letters, digits, '-' and '_'), got {key!r}")
    return keys


def upstream_url(value: Any) -> str:
    url = string(value).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "file":
        if not parts.path:
            raise ValueError(f"a file upstream needs a path, like file:///var/lib/relay/out.jsonl, got {value!r}")
        return url
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s):// or file:// URL, got {value!r}")
    return url


def globs(value: Any) -> tuple[str, ...]:
    """A glob or a list of globs (numbers are read as text)."""
    items = [value] if isinstance(value, str | int | float) and not isinstance(value, bool) else value
    if not isinstance(items, list) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in items
    ):
        raise ValueError(f"expected a string or a list of strings (globs allowed), got {value!r}")
    return tuple(str(v) for v in items)


def short_name(value: Any) -> str:
    """A name for a key or a metric label: at most 64 characters, no spaces or `:,;` (a quota id, a prefix)."""
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise ValueError(f"expected a non-empty name, got {value!r}")
    text = str(value).strip()
    if len(text) > 64 or any(ch.isspace() or ch in ":,;" for ch in text):
        raise ValueError(f"expected a name of at most 64 characters without spaces or ':,;', got {value!r}")
    return text
