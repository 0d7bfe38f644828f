"""Event fields that filter and sampling rules read, extracted so that no event data can make them raise.

`EventView`'s `hosts()`, `header()` and `tags()` raise on some hostile payloads (a URL `urlsplit` refuses,
such as `http://[::1/x`; `str()` of a list nested ~1000 deep, which orjson parses). These readers answer
"no value" instead: a rule that reads them then simply doesn't match.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..envelope.event import EventView


def scalar_text(value: Any) -> str | None:
    """A string, number or boolean as `str()` gives it; None for anything else, or an int too long to print."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        try:
            return str(value)
        except ValueError:  # an int past sys.get_int_max_str_digits()
            return None
    return None


def url_host(url: str) -> str | None:
    """The host of a URL, or None if it has none or is malformed (an unclosed `[`, bad characters)."""
    try:
        return urlsplit(url).hostname or None
    except ValueError:
        return None


def header(view: EventView, name: str) -> str | None:
    """A request header, whatever its case, from a mapping or a list of pairs of scalars."""
    headers = view.request().get("headers")
    pairs = headers.items() if isinstance(headers, dict) else headers if isinstance(headers, list) else ()
    wanted = name.lower()
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            continue
        key = scalar_text(pair[0])
        if key is not None and key.lower() == wanted:
            return scalar_text(pair[1])
    return None


def hosts(view: EventView) -> list[str]:
    """Host names the event came from: its request URL, and Host, Origin and Referer headers."""
    found: list[str] = []
    for candidate in (view.request().get("url"), header(view, "origin"), header(view, "referer")):
        if isinstance(candidate, str) and "://" in candidate:
            host = url_host(candidate)
            if host:
                found.append(host)
    host_header = header(view, "host")
    if host_header:
        bracketed = host_header.startswith("[") and "]" in host_header
        found.append(host_header[1 : host_header.index("]")] if bracketed else host_header.split(":")[0])
    return found


def tags(view: EventView) -> dict[str, str]:
    """Tags, from a mapping or a list of pairs; a tag whose key or value isn't a scalar is left out."""
    raw = view.event.get("tags")
    pairs = raw.items() if isinstance(raw, dict) else raw if isinstance(raw, list) else ()
    found: dict[str, str] = {}
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            continue
        key, value = scalar_text(pair[0]), scalar_text(pair[1])
        if key is not None and value is not None:
            found[key] = value
    return found


__all__ = ["header", "hosts", "scalar_text", "tags", "url_host"]
