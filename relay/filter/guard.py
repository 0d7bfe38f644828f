"""Rules that fail on malformed event data don't match: one broken rule never turns an envelope into a 500."""

from __future__ import annotations

import logging

from ..logs import log_event

# (logger, stage, rule, exception type) already logged at WARNING. Rule names come from the config and
# exception types from the code, so this stays small whatever clients send.
_warned: set[tuple[str, str, str, str]] = set()


def rule_failed(logger: logging.Logger, stage: str, rule: str, exc: Exception) -> None:
    """Log that a rule raised and is read as not matching, by stage, rule and exception type only (the
    exception's message could quote the event). WARNING the first time, DEBUG after: clients can't flood the log."""
    error = type(exc).__name__
    key = (logger.name, stage, rule, error)
    level = logging.DEBUG if key in _warned else logging.WARNING
    _warned.add(key)
    log_event(logger, level, "rule failed on event data, read as not matching", stage=stage, rule=rule, error=error)


__all__ = ["rule_failed"]
