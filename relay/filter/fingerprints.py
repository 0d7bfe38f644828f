"""Central fingerprint rules, with Sentry's server-side fingerprinting semantics.

Rules are tried in order and the first match wins. Matchers of the exception group (`error.type`,
`error.value`) must hold for one and the same exception, and frame matchers (`stack.*`, `app`) for one
and the same frame, as in Sentry. `{{ default }}` stays in the fingerprint for Sentry to expand into
its default grouping. A fingerprint the SDK set (anything but `["{{ default }}"]`) is kept unless
the rule says `override: true`.

Rules match the event as it arrived, before scrubbing, so a rule on an exception message still
matches when the message held an email that scrubbing then replaced. What a rule writes is its own
text plus variables that hold no personal data, so matching early never leaks anything.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from ..config import FingerprintMatcher, FingerprintRule
from ..envelope.event import EventView
from .fields import tags
from .guard import rule_failed

logger = logging.getLogger("relay.filter")

DEFAULT = "{{ default }}"
_EXCEPTION_KEYS = frozenset({"error.type", "error.value"})
_FRAME_KEYS = frozenset({"stack.function", "stack.module", "stack.abs_path", "stack.package", "app"})
_FOLDED = frozenset({"error.value", "message", "stack.abs_path"})  # matched case-insensitively


def fingerprint_for(rules: Sequence[FingerprintRule], event: dict[str, Any]) -> list[str] | None:
    """The fingerprint the first matching rule gives, or None to leave the event's alone.

    A rule that raises on malformed event data doesn't match (logged by its place in the config).
    """
    if not rules:
        return None
    view = EventView(event)
    existing = event.get("fingerprint")
    set_by_sdk = isinstance(existing, list) and bool(existing) and existing != [DEFAULT]
    for rule in rules:
        try:
            if not _matches(rule, view):
                continue
            if set_by_sdk and not rule.override:
                return None
            return [_fill(value, view) for value in rule.fingerprint]
        except Exception as exc:
            rule_failed(logger, "fingerprints", rule.source or "fingerprint rule", exc)
    return None


def _matches(rule: FingerprintRule, view: EventView) -> bool:
    exception_matchers = [m for m in rule.matchers if m.key in _EXCEPTION_KEYS]
    frame_matchers = [m for m in rule.matchers if m.key in _FRAME_KEYS]
    others = [m for m in rule.matchers if m.key not in _EXCEPTION_KEYS and m.key not in _FRAME_KEYS]
    if exception_matchers and not any(
        all(_check(m, _exception_value(m.key, e)) for m in exception_matchers) for e in view.exceptions()
    ):
        return False
    if frame_matchers and not any(
        all(_check(m, _frame_value(m.key, f)) for m in frame_matchers) for f in view.frames()
    ):
        return False
    return all(_check_any(m, _values(m.key, view)) for m in others)


def _check(matcher: FingerprintMatcher, value: str | None) -> bool:
    hit = value is not None and _glob(matcher, value)
    return hit != matcher.negated


def _check_any(matcher: FingerprintMatcher, values: list[str]) -> bool:
    hit = any(_glob(matcher, v) for v in values)
    return hit != matcher.negated


def _glob(matcher: FingerprintMatcher, value: str) -> bool:
    if matcher.key in _FOLDED:
        return fnmatchcase(value.lower(), matcher.pattern.lower())
    return fnmatchcase(value, matcher.pattern)


def _exception_value(key: str, exception: dict[str, Any]) -> str | None:
    value = exception.get("type" if key == "error.type" else "value")
    return value if isinstance(value, str) else None


def _frame_value(key: str, frame: dict[str, Any]) -> str | None:
    if key == "app":
        in_app = frame.get("in_app")
        return None if in_app is None else ("yes" if in_app else "no")
    if key == "stack.abs_path":
        value = frame.get("abs_path") or frame.get("filename")
    else:
        value = frame.get(key.removeprefix("stack."))
    return value if isinstance(value, str) else None


def _values(key: str, view: EventView) -> list[str]:
    if key == "message":
        return view.messages()
    if key.startswith("tags."):
        tag = tags(view).get(key[5:])
        return [tag] if tag is not None else []
    if key == "sdk":
        name = view.sdk_name()
        return [name] if name else []
    if key == "family":
        platform = view.text("platform") or "other"
        family = (
            "javascript"
            if platform in ("javascript", "node")
            else "native"
            if platform in ("native", "cocoa")
            else "other"
        )
        return [family, "all"]
    value = view.text(key)
    return [value] if value is not None else []


def _fill(value: str, view: EventView) -> str:
    if not (value.startswith("{{") and value.endswith("}}")) or value == DEFAULT:
        return value
    name = value[2:-2].strip()
    if name in ("error.type", "type"):
        types = view.exception_types()
        return types[-1] if types else "<no-type>"
    if name in ("function", "stack.function", "module", "stack.module"):
        key = "function" if "function" in name else "module"
        frames = [f for f in view.frames() if isinstance(f.get(key), str)]
        in_app = [f for f in frames if f.get("in_app")]
        chosen = (in_app or frames)[-1:] if frames else []
        return str(chosen[0][key]) if chosen else f"<no-{key}>"
    return view.text(name) or f"<no-{name}>"


__all__ = ["DEFAULT", "fingerprint_for"]
