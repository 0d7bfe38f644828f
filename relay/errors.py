"""The relay's exception hierarchy: one root, a few well-named branches."""

from __future__ import annotations

from collections.abc import Mapping


class RelayError(Exception):
    """Root of every error the relay raises on purpose."""


class ConfigError(RelayError):
    """The configuration is invalid; carries every problem found, each naming file and key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class EnvelopeError(RelayError):
    """A payload could not be parsed as a Sentry envelope or event."""


class TooManyItems(EnvelopeError):
    """An envelope holds more items than `limits.max_envelope_items` (answered with 413)."""


class InvalidItemJson(EnvelopeError):
    """An item payload that must be JSON is not; `reason` is the parser's message."""

    def __init__(self, item_type: str, reason: str) -> None:
        super().__init__(f"{item_type} item payload is not valid JSON: {reason}")
        self.reason = reason


class HttpError(RelayError):
    """An ingest request is refused; rendered as a JSON body with a `detail`."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


class Unavailable(HttpError):
    """A 503 the relay answers while it protects itself (a spent in-flight budget, a full or lost spool): logged
    once per episode by what refuses, not as an error per request."""


class SpoolFull(RelayError):
    """The spool has no room for another envelope."""


class UpstreamUnavailable(RelayError):
    """The upstream could not be reached (connect error, reset, or timeout)."""
