"""The scrubbing engine: walks a JSON payload once, applying compiled rules by path.

Decisions that depend only on a node's path ("shape") are computed once per shape and cached,
and results for short strings are memoized, so a steady stream of similar events costs little.
Every change is recorded in Sentry's `_meta` format: `[rule_id, type, start, end]` plus `len`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import regex

from ..errors import RelayError
from ..rules.keys import normalize_key
from ..rules.model import ActionType, Rule
from ..rules.selectors import SEP

# key=value pairs inside strings: query strings, form bodies, log lines.
_KEY_VALUE = regex.compile(r"(?:^|(?<=[?&;,\s]))([A-Za-z][\w.\[\]-]{0,63})=([^&#\s;,'\"]+)")
_PLACEHOLDER = regex.compile(r"\[(?:[a-z_]+|Filtered|hash:[0-9a-f]{32})\]")
_MAX_DEPTH = 128
_MAX_CACHED_STRING = 512
_CACHE_LIMIT = 100_000
_NUMERIC_DETECTORS = ("credit_card", "imei")

Remark = list[Any]


class ScrubError(RelayError):
    """Scrubbing could not finish safely; the item must be dropped (fail closed)."""


@dataclass(slots=True)
class _Plan:
    """Everything the engine needs to know about nodes of one shape."""

    id: int
    keep: bool  # an allowlist rule covers this subtree
    key_rule: Rule | None  # the node's key names a sensitive value: redact it whole
    string_rules: tuple[Rule, ...]
    keep_rules: tuple[Rule, ...]
    key_rules: tuple[Rule, ...]  # for key=value pairs inside strings


@dataclass(slots=True)
class _Result:
    """A memoized string result: new value (None = removed) and remarks."""

    value: str | None
    remarks: list[Remark]


_UNCHANGED = _Result("", [])


class Scrubber:
    """Applies an ordered list of rules to payloads; one instance per distinct rule list."""

    def __init__(self, rules: Sequence[Rule], hash_key: bytes = b"", time_limit: float = 0.25) -> None:
        self.rules = tuple(rules)
        self._hash_key = hash_key
        self._time_limit = time_limit
        keep = [r for r in rules if r.action.type is ActionType.KEEP]
        act = [r for r in rules if r.action.type is not ActionType.KEEP]
        self._keep_subtree = [r for r in keep if r.detector is None and r.pattern is None and r.keys is None]
        self._keep_keys = [r for r in keep if r.keys is not None]
        self._keep_strings = [r for r in keep if r.detector is not None or r.pattern is not None]
        self._key_rules = [r for r in act if r.keys is not None]
        self._string_rules = [r for r in act if r.detector is not None or r.pattern is not None]
        self._plans: dict[tuple[str, str], _Plan] = {}
        self._strings: dict[tuple[int, str], _Result] = {}
        self._key_names: dict[str, Rule | None] = {}
        self._deadline = 0.0
        self._nodes = 0
        self._plan_ids = itertools.count(1)

    # -- public API -----------------------------------------------------------------

    def scrub(self, payload: Any, root: str = "", meta: dict[str, Any] | None = None) -> Any:
        """Scrub a JSON value in place (returning the new root); remarks go into `meta` if given."""
        self._deadline = time.perf_counter() + self._time_limit
        self._nodes = 0
        return self._walk(payload, root, root.rpartition(SEP)[2], [], meta, 0)

    def scrub_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Scrub an event or transaction, merging remarks into its `_meta`."""
        meta: dict[str, Any] = {}
        existing = event.pop("_meta", None)
        self.scrub(event, "", meta)
        if isinstance(existing, dict):
            meta = _merge_meta(existing, meta)
        if meta:
            event["_meta"] = meta
        return event

    def scrub_text(self, text: str, root: str) -> str | None:
        """Scrub free text (a text attachment) as one string at shape `root`."""
        self._deadline = time.perf_counter() + self._time_limit
        plan = self._plan(root, root.rpartition(SEP)[2])
        if plan.keep:
            return text
        result = self._compute(text, plan)
        return text if result is _UNCHANGED else result.value

    # -- planning -----------------------------------------------------------------------

    def _plan(self, shape: str, key: str) -> _Plan:
        cache_key = (shape, key)
        plan = self._plans.get(cache_key)
        if plan is None:
            if len(self._plans) > _CACHE_LIMIT:
                self._plans.clear()
            plan = self._make_plan(shape, key)
            self._plans[cache_key] = plan
        return plan

    def _make_plan(self, shape: str, key: str) -> _Plan:
        keep = any(r.selector.matches(shape) for r in self._keep_subtree)
        key_rule = None
        if key and key != "#":
            normalized = normalize_key(key)
            kept = any(r.keys is not None and r.keys.fullmatch(normalized) and r.selector.matches(shape)
                       for r in self._keep_keys)  # fmt: skip
            if not kept:
                for rule in self._key_rules:
                    if rule.keys is not None and rule.keys.fullmatch(normalized) and rule.selector.matches(shape):
                        key_rule = rule
                        break
        return _Plan(
            id=next(self._plan_ids),
            keep=keep,
            key_rule=key_rule,
            string_rules=tuple(r for r in self._string_rules if r.selector.matches(shape)),
            keep_rules=tuple(r for r in self._keep_strings if r.selector.matches(shape)),
            key_rules=tuple(r for r in self._key_rules if r.selector.matches(shape)),
        )

    # -- walking ------------------------------------------------------------------------

    def _walk(self, value: Any, shape: str, key: str, path: list[str], meta: dict[str, Any] | None, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise ScrubError(f"payload nested deeper than {_MAX_DEPTH} levels")
        self._nodes += 1
        if self._nodes & 127 == 0 and time.perf_counter() > self._deadline:
            raise ScrubError(f"scrubbing took longer than {self._time_limit:g}s")
        plan = self._plan(shape, key)
        if plan.keep:
            return value
        if plan.key_rule is not None and value is not None and not isinstance(value, bool):
            return self._redact_whole(value, plan.key_rule, path, meta)
        if isinstance(value, str):
            if not plan.string_rules and not plan.key_rules:
                return value
            return self._scrub_string(value, plan, path, meta)
        prefix = shape + SEP if shape else ""
        if isinstance(value, dict):
            for child_key, child in value.items():
                if child is None or isinstance(child, bool | float):
                    continue
                path.append(child_key)
                new = self._walk(child, prefix + child_key, child_key, path, meta, depth + 1)
                path.pop()
                if new is not child:
                    value[child_key] = new
        elif isinstance(value, list):
            pairs = bool(value) and _is_pair_list(value)
            for index, child in enumerate(value):
                if child is None or isinstance(child, bool | float):
                    continue
                path.append(str(index))
                if pairs:
                    path.append("1")
                    pair_key = child[0]
                    new = self._walk(child[1], prefix + pair_key, pair_key, path, meta, depth + 1)
                    path.pop()
                    if new is not child[1]:
                        child[1] = new
                else:
                    new = self._walk(child, prefix + "#", "#", path, meta, depth + 1)
                    if new is not child:
                        value[index] = new
                path.pop()
        elif isinstance(value, int) and abs(value) >= 10**12 and plan.string_rules:
            return self._scrub_number(value, plan, path, meta)
        return value

    def _redact_whole(self, value: Any, rule: Rule, path: list[str], meta: dict[str, Any] | None) -> Any:
        original = value if isinstance(value, str) else _to_text(value)
        action = rule.action
        if action.type is ActionType.REMOVE:
            _record(meta, path, [[rule.id, "x"]], len(original))
            return None
        if isinstance(value, str) and _PLACEHOLDER.fullmatch(value):
            return value  # already scrubbed: keep scrubbing idempotent
        new, kind = self._apply(original, rule, whole=True)
        if new == original:
            return value
        _record(meta, path, [[rule.id, kind, 0, len(new)]], len(original))
        return new

    def _scrub_string(self, text: str, plan: _Plan, path: list[str], meta: dict[str, Any] | None) -> Any:
        if len(text) <= _MAX_CACHED_STRING:
            cache_key = (plan.id, text)
            result = self._strings.get(cache_key)
            if result is None:
                if len(self._strings) > _CACHE_LIMIT:
                    self._strings.clear()
                result = self._compute(text, plan)
                self._strings[cache_key] = result
        else:
            result = self._compute(text, plan)
        if result is _UNCHANGED:
            return text
        _record(meta, path, result.remarks, len(text))
        return result.value

    def _scrub_number(self, value: int, plan: _Plan, path: list[str], meta: dict[str, Any] | None) -> Any:
        text = str(value)
        for rule in plan.string_rules:
            if rule.detector is not None and rule.detector.name in _NUMERIC_DETECTORS and any(rule.detector.find(text)):
                new, kind = self._apply(text, rule, whole=True)
                _record(meta, path, [[rule.id, kind, 0, len(new)]], len(text))
                return None if rule.action.type is ActionType.REMOVE else new
        return value

    def _compute(self, text: str, plan: _Plan) -> _Result:
        spans: list[tuple[int, int, Rule]] = []
        for rule in plan.string_rules:
            if rule.detector is not None:
                spans.extend((a, b, rule) for a, b in rule.detector.find(text))
            elif rule.pattern is not None:
                spans.extend(self._pattern_spans(rule, text))
        if plan.key_rules and "=" in text:
            for match in _KEY_VALUE.finditer(text):
                key_rule = self._key_rule_for(match.group(1), plan)
                if key_rule is not None and not _PLACEHOLDER.fullmatch(match.group(2)):
                    spans.append((match.start(2), match.end(2), key_rule))
        if not spans:
            return _UNCHANGED
        if plan.keep_rules:
            kept = self._keep_spans(text, plan.keep_rules)
            spans = [s for s in spans if not any(s[0] < b and a < s[1] for a, b in kept)]
            if not spans:
                return _UNCHANGED
        for _, _, rule in spans:
            if rule.action.type is ActionType.REMOVE:
                return _Result(None, [[rule.id, "x"]])
        # Spans arrive in rule order; where two overlap, the earlier rule wins.
        accepted: list[tuple[int, int, Rule]] = []
        for span in spans:
            if not _PLACEHOLDER.fullmatch(text, span[0], span[1]) and not any(
                span[0] < b and a < span[1] for a, b, _ in accepted
            ):
                accepted.append(span)
        accepted.sort(key=lambda s: s[0])
        out: list[str] = []
        remarks: list[Remark] = []
        cursor = 0
        length = 0
        for start, end, rule in accepted:
            original = text[start:end]
            replacement, kind = self._apply(original, rule, whole=False)
            out.append(text[cursor:start])
            length += start - cursor
            out.append(replacement)
            remarks.append([rule.id, kind, length, length + len(replacement)])
            length += len(replacement)
            cursor = end
        if not remarks:
            return _UNCHANGED
        out.append(text[cursor:])
        return _Result("".join(out), remarks)

    def _pattern_spans(self, rule: Rule, text: str) -> list[tuple[int, int, Rule]]:
        assert rule.pattern is not None
        remaining = max(0.001, self._deadline - time.perf_counter())
        try:
            return [
                (m.start(rule.group), m.end(rule.group), rule)
                for m in rule.pattern.finditer(text, timeout=remaining)
                if m.end(rule.group) > m.start(rule.group)
            ]
        except TimeoutError:
            raise ScrubError(f"rule {rule.id} timed out (catastrophic backtracking?)") from None

    def _keep_spans(self, text: str, rules: tuple[Rule, ...]) -> list[tuple[int, int]]:
        kept: list[tuple[int, int]] = []
        for rule in rules:
            if rule.detector is not None:
                kept.extend(rule.detector.find(text))
            else:
                kept.extend((a, b) for a, b, _ in self._pattern_spans(rule, text))
        return kept

    def _key_rule_for(self, name: str, plan: _Plan) -> Rule | None:
        normalized = normalize_key(name)
        for rule in plan.key_rules:
            if rule.keys is not None and rule.keys.fullmatch(normalized):
                return rule
        return None

    def _apply(self, original: str, rule: Rule, *, whole: bool) -> tuple[str, str]:
        action = rule.action
        if action.type is ActionType.MASK:
            keep = min(action.keep_last, len(original))
            return action.mask_char * (len(original) - keep) + original[len(original) - keep :], "m"
        if action.type is ActionType.HASH:
            digest = hmac.new(self._hash_key, original.encode(), hashlib.sha256).hexdigest()[:32]
            return f"[hash:{digest}]", "p"
        return rule.placeholder, "s"


def _is_pair_list(value: list[Any]) -> bool:
    first = value[0]
    return (
        isinstance(first, list)
        and len(first) == 2
        and isinstance(first[0], str)
        and all(isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) for v in value)
    )


def _to_text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _record(meta: dict[str, Any] | None, path: list[str], remarks: list[Remark], original_length: int) -> None:
    if meta is None:
        return
    node = meta
    for segment in path:
        node = node.setdefault(segment, {})
    entry = node.setdefault("", {})
    entry.setdefault("rem", []).extend(remarks)
    entry.setdefault("len", original_length)


def _merge_meta(existing: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    for key, value in new.items():
        if key == "" and isinstance(existing.get(""), dict):
            existing[""].setdefault("rem", []).extend(value.get("rem", []))
            existing[""].setdefault("len", value.get("len"))
        elif isinstance(value, dict) and isinstance(existing.get(key), dict):
            _merge_meta(existing[key], value)
        else:
            existing[key] = value
    return existing
