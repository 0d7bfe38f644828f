"""Sampling decisions: which rate applies to an item, and a random number every replica agrees on.

The number an item is compared with is never drawn from a local random generator:

- transactions and what belongs to their trace (spans, profiles) use the trace's `sample_rand` from the
  envelope's trace header when the SDK sent one, else the low 56 bits of the `trace_id` (the randomness
  W3C Trace Context level 2 defines), so every relay, replica and retry keeps or drops a whole trace;
- errors use the low 56 bits of their `event_id`, so a retried event gets the same decision.

Trace rules match the trace header (the dynamic sampling context, the same for every envelope of one
trace) where it has the field, and the event otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from ..config import SamplingConfig, SamplingRule
from ..envelope.event import EventView
from ..filter.fields import scalar_text, tags
from ..filter.guard import rule_failed

logger = logging.getLogger("relay.sample")

TRACE_CATEGORIES = frozenset({"transaction", "span", "profile", "profile_chunk"})
_RANDOM_BITS = 56
_ERROR_FALLBACK = {"default": "error", "security": "error"}


@dataclass(frozen=True, slots=True)
class Decision:
    """Keep or drop, and why: the matching rule's id, or `category:<name>` for a per-category rate."""

    keep: bool
    reason: str
    rate: float


def random_from_hex(value: Any) -> float | None:
    """A number in [0, 1) from the low 56 bits of a hex id (trace or event id), or None if not one."""
    if not isinstance(value, str):
        return None
    digits = value.replace("-", "")[-_RANDOM_BITS // 4 :]
    if len(digits) < _RANDOM_BITS // 4:
        return None
    try:
        return int(digits, 16) / (1 << _RANDOM_BITS)
    except ValueError:
        return None


def trace_random(trace: Any, event: dict[str, Any] | None) -> float | None:
    """The trace's random number: `sample_rand` from the trace header, else from its trace id."""
    if isinstance(trace, dict):
        rand = trace.get("sample_rand")
        try:
            value = float(rand) if isinstance(rand, str | int | float) and not isinstance(rand, bool) else None
        except (ValueError, OverflowError):  # not a number, or an int too large for a float
            value = None
        if value is not None and 0.0 <= value < 1.0:
            return value
        found = random_from_hex(trace.get("trace_id"))
        if found is not None:
            return found
    if event is not None:
        contexts = event.get("contexts")
        context = contexts.get("trace") if isinstance(contexts, dict) else None
        if isinstance(context, dict):
            return random_from_hex(context.get("trace_id"))
    return None


def needs_event(config: SamplingConfig) -> bool:
    """Whether any rule reads the event payload (level, exception type or tags, or a fallback field)."""
    return bool(config.rules)


def decide(config: SamplingConfig, category: str, value: float, event: dict[str, Any] | None, trace: Any) -> Decision:
    """The decision for an item of `category` whose random number is `value`.

    A rule that raises on malformed event data doesn't match (logged by its id).
    """
    sampled_as = "transaction" if category in TRACE_CATEGORIES else category
    for rule in config.rules:
        if rule.categories and sampled_as not in rule.categories:
            continue
        try:
            matched = _matches(rule, sampled_as, event, trace)
        except Exception as exc:
            rule_failed(logger, "sampling", rule.id, exc)
            continue
        if matched:
            return Decision(value < rule.rate, rule.id, rule.rate)
    rate = config.rate_for(sampled_as)
    if rate is None and sampled_as in _ERROR_FALLBACK:
        rate = config.rate_for(_ERROR_FALLBACK[sampled_as])
    if rate is None:
        return Decision(True, "", 1.0)
    return Decision(value < rate, f"category:{sampled_as}", rate)


def _matches(rule: SamplingRule, category: str, event: dict[str, Any] | None, trace: Any) -> bool:
    dsc = trace if category == "transaction" and isinstance(trace, dict) else {}
    data = event or {}
    view = EventView(data)
    checks: list[tuple[tuple[str, ...], list[str]]] = [
        (rule.level, _values(data.get("level"))),
        (rule.environment, _values(dsc.get("environment", data.get("environment")))),
        (rule.release, _values(dsc.get("release", data.get("release")))),
        (rule.transaction, _values(dsc.get("transaction", data.get("transaction")))),
        (rule.exception_type, view.exception_types()),
    ]
    for patterns, values in checks:
        if patterns and not any(fnmatchcase(v, p) for p in patterns for v in values):
            return False
    if rule.tags:
        found = tags(view)
        for name, patterns in rule.tags:
            value = found.get(name)
            if value is None or not any(fnmatchcase(value, p) for p in patterns):
                return False
    return True


def _values(value: Any) -> list[str]:
    text = None if isinstance(value, bool) else scalar_text(value)
    return [] if text is None else [text]


__all__ = ["TRACE_CATEGORIES", "Decision", "decide", "needs_event", "random_from_hex", "trace_random"]
