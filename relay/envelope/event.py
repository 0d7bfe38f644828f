"""Read-only access to the parts of an event that filters and fingerprint rules look at."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import orjson


class EventView:
    """Lazy accessors over an event payload (any shape the protocol allows, nothing assumed)."""

    __slots__ = ("event",)

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event

    def text(self, key: str) -> str | None:
        """A top-level string field."""
        value = self.event.get(key)
        return value if isinstance(value, str) else None

    def exceptions(self) -> list[dict[str, Any]]:
        """Every exception of the chain."""
        exception = self.event.get("exception")
        values = exception.get("values") if isinstance(exception, dict) else exception
        return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []

    def exception_types(self) -> list[str]:
        """Types of every exception in the chain."""
        return [e["type"] for e in self.exceptions() if isinstance(e.get("type"), str)]

    def exception_values(self) -> list[str]:
        """Values of every exception in the chain."""
        return [e["value"] for e in self.exceptions() if isinstance(e.get("value"), str)]

    def messages(self) -> list[str]:
        """The event's message (formatted and template) and its exceptions as `Type: value` and value."""
        found: list[str] = []
        for entry in (self.event.get("logentry"), self.event.get("message")):
            if isinstance(entry, str):
                found.append(entry)
            elif isinstance(entry, dict):
                found += [v for k in ("formatted", "message") if isinstance(v := entry.get(k), str)]
                if not isinstance(entry.get("formatted"), str):
                    formatted = format_logentry(entry.get("message"), entry.get("params"))
                    if formatted is not None:
                        found.append(formatted)  # what Sentry shows: the template with its params filled in
        for exception in self.exceptions():
            kind, value = exception.get("type"), exception.get("value")
            if isinstance(value, str):
                found.append(value)
                if isinstance(kind, str):
                    found.append(f"{kind}: {value}")
        return found

    def frames(self) -> Iterator[dict[str, Any]]:
        """Stack frames of exceptions, threads and the event's own stacktrace."""
        sources: list[Any] = [e.get("stacktrace") for e in self.exceptions()]
        sources.append(self.event.get("stacktrace"))
        threads = self.event.get("threads")
        values = threads.get("values") if isinstance(threads, dict) else threads
        if isinstance(values, list):
            sources += [t.get("stacktrace") for t in values if isinstance(t, dict)]
        for stacktrace in sources:
            frames = stacktrace.get("frames") if isinstance(stacktrace, dict) else None
            if isinstance(frames, list):
                yield from (f for f in frames if isinstance(f, dict))

    def tags(self) -> dict[str, str]:
        """Tags, from a mapping or a list of pairs."""
        tags = self.event.get("tags")
        if isinstance(tags, dict):
            return {str(k): str(v) for k, v in tags.items() if v is not None}
        if isinstance(tags, list):
            return {str(t[0]): str(t[1]) for t in tags if isinstance(t, list | tuple) and len(t) == 2}
        return {}

    def request(self) -> dict[str, Any]:
        """The request interface."""
        request = self.event.get("request")
        return request if isinstance(request, dict) else {}

    def header(self, name: str) -> str | None:
        """A request header, whatever its case, from a mapping or a list of pairs."""
        headers = self.request().get("headers")
        pairs = headers.items() if isinstance(headers, dict) else headers if isinstance(headers, list) else ()
        wanted = name.lower()
        for pair in pairs:
            if isinstance(pair, list | tuple) and len(pair) == 2 and str(pair[0]).lower() == wanted:
                return str(pair[1])
        return None

    def hosts(self) -> list[str]:
        """Host names the event came from: its request URL, and Host, Origin and Referer headers."""
        found: list[str] = []
        url = self.request().get("url")
        for candidate in (url, self.header("origin"), self.header("referer")):
            if isinstance(candidate, str) and "://" in candidate:
                host = urlsplit(candidate).hostname
                if host:
                    found.append(host)
        host_header = self.header("host")
        if host_header:
            bracketed = host_header.startswith("[") and "]" in host_header
            found.append(host_header[1 : host_header.index("]")] if bracketed else host_header.split(":")[0])
        return found

    def user_ip(self) -> str | None:
        """The user's IP address, if the event carries one."""
        user = self.event.get("user")
        ip = user.get("ip_address") if isinstance(user, dict) else None
        return ip if isinstance(ip, str) else None

    def sdk_name(self) -> str | None:
        """The SDK's name."""
        sdk = self.event.get("sdk")
        name = sdk.get("name") if isinstance(sdk, dict) else None
        return name if isinstance(name, str) else None


__all__ = ["EventView"]


_PLACEHOLDER = re.compile(r"%[sdifr]|\{\d*\}")
_MAX_FORMATTED = 8192


def format_logentry(template: Any, params: Any) -> str | None:
    """A log message with its params in the placeholders (`%s`, `%d`, `{}`, `{0}`), as Sentry formats a
    logentry that came without `formatted`; None when there is nothing to fill in."""
    if not isinstance(template, str) or not isinstance(params, list) or not params or len(template) > _MAX_FORMATTED:
        return None
    values = [p if isinstance(p, str) else orjson.dumps(p).decode() if p is not None else "null" for p in params[:64]]
    position = iter(range(len(values)))

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        index = int(token[1:-1]) if token.startswith("{") and len(token) > 2 else next(position, None)
        return values[index] if index is not None and index < len(values) else token

    return _PLACEHOLDER.sub(fill, template)
