"""The scrubbing engine: walks a JSON payload once, applying compiled rules by path.

Decisions that depend only on a node's path ("shape") are computed once per shape and cached,
and results for short strings are memoized, so a steady stream of similar events costs little.
Every change is recorded in Sentry's `_meta` format: `[rule_id, type, start, end]` plus `len`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..rules.model import ActionType, Rule
from ..rules.selectors import Selector
from . import identity
from .compute import _FIRST_KEY_VALUE, _KEY_VALUE, _SAFE_SHAPE, _TEMPLATE, Compute, _alternative, _key_values
from .detectors import activate, fired
from .encoded import PERCENT_ESCAPE
from .meta import PLACEHOLDER, Propagator, merge_meta, occurs_in, propagates, record
from .planner import Planner
from .plans import (
    _CACHE_LIMIT,
    _MAX_CACHED_STRING,
    _UNCHANGED,
    Remark,
    ScrubError,
    Walker,
    _Family,
    _info,
    _Plan,
    _Result,
    _Selection,
)

if TYPE_CHECKING:
    from ._walker import Walker as _Walker

_MAX_DEPTH = 128
_MAX_REDACT_DEPTH = 32  # deeper containers under a key rule are redacted whole, as one string
_TIME_LIMIT_BYTES = 64 * 1024  # payloads above this get a proportionally longer time bound
_TYPED_VALUE_KEYS = frozenset({"type", "value", "unit"})
_NUMERIC_DETECTORS = ("credit_card", "imei")


class Scrubber(Planner, Compute):
    """Applies an ordered list of rules to payloads; one instance per distinct rule list."""

    def __init__(
        self,
        rules: Sequence[Rule],
        hash_key: bytes = b"",
        time_limit: float = 0.25,
        pause: float = 0.0,
        identity_keys: Sequence[str] = identity.DEFAULT_KEYS,
    ) -> None:
        self.rules = tuple(rules)
        activate({r.detector.family for r in rules if r.detector is not None})  # their keyword triggers
        # Keys whose values are the user's identity, replaced wherever else they occur (scrub.identity_keys):
        # key rules of their own after the packs' (see scrub.identity).
        self.identity_keys = identity.normalized_keys(identity_keys) if self.rules else ()
        if self.identity_keys:
            rules = (*self.rules, *identity.rules(self.identity_keys))
        self._hash_key = hash_key
        self._time_limit = time_limit
        self._budget = time_limit
        # On a worker thread: sleep `pause` after each millisecond of work, so the event loop's thread
        # gets the GIL (and the core) promptly while a large payload is scrubbed.
        self._pause = pause
        self._last_pause = 0.0
        keep = [r for r in rules if r.action.type is ActionType.KEEP]
        # A keep rule with a detector (and no keys): its spans are found with the other detectors' (in C) and win
        # every overlap, coming first in rule order; then they are written as they were (compute._result).
        keep_found = [r for r in keep if r.detector is not None and r.keys is None and r.pattern is None]
        found_ids = {id(rule) for rule in keep_found}
        first = {id(rule): index - len(rules) for index, rule in enumerate(rules) if id(rule) in found_ids}
        self._order = {id(rule): first.get(id(rule), index) for index, rule in enumerate(rules)}
        self._infos = {id(rule): _info(rule, self._order[id(rule)]) for rule in rules}
        # Audit-mode rules change nothing here: an Auditor runs them on a copy (see scrub.audit).
        act = [r for r in rules if r.action.type is not ActionType.KEEP and not r.audit]
        self._keep_subtree = [r for r in keep if r.detector is None and r.pattern is None and r.keys is None]
        self._keep_keys = [r for r in keep if r.keys is not None]
        # (the other keep rules with a detector or a pattern allow what they match, in the Python compute)
        allowing = [r for r in keep if r.detector is not None or r.pattern is not None]
        self._keep_strings = [r for r in allowing if id(r) not in found_ids]
        self._key_rules = [r for r in act if r.keys is not None]
        self._string_rules = [r for r in (*keep_found, *act) if r.detector is not None or r.pattern is not None]
        # Each distinct selector, evaluated once per new shape; shapes that select the same ones share a _Selection.
        # Rules written alike (a pack's defaults) share one: a new shape costs a match per distinct selector.
        canonical: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
        selectors: list[Selector] = []
        self._selector_index: dict[int, int] = {}
        for rule in (*keep, *act):
            position = canonical.setdefault(rule.selector.source, len(selectors))
            if position == len(selectors):
                selectors.append(rule.selector)
            self._selector_index[id(rule.selector)] = position
        self._selectors = tuple(selectors)
        reach = {r.selector.source: r.selector for r in (*self._string_rules, *self._key_rules)}
        self._reach = tuple(reach.values())
        self._selections: dict[tuple[bool, ...], _Selection] = {}
        self._combined: dict[tuple[str, ...], re.Pattern[str]] = {}
        self._family_sets: dict[tuple[int, ...], tuple[_Family, ...]] = {}
        self._key_names: dict[tuple[tuple[Rule, ...], str], Rule | None] = {}
        self._cached = 0
        self._root = self._make_plan("", "")
        self._deadline = math.inf  # set for each scrub, and no bound between them (see _checkpoint)
        self._containers = 0
        # Values found sensitive in this payload: original -> (replacement, rule id, remark type).
        self._found: dict[str, tuple[str, str, str]] | None = None
        self._walk: Callable[[Any, _Plan, list[str], dict[str, Any] | None, int, str | None], Any] = self._value
        self._compiled: Callable[[str, _Plan], _Result] | None = None
        self._walker: _Walker | None = None
        if Walker is not None:
            walker = Walker(
                owner=self,
                child=self._child,
                scrub_string=self._scrub_string,
                redact_whole=self._redact_whole,
                scrub_number=self._scrub_number,
                enter=self._enter,
                checkpoint=self._checkpoint,
                reset=self._reset,
                unchanged=_UNCHANGED,
                max_cached=_MAX_CACHED_STRING,
                cache_limit=_CACHE_LIMIT,
                max_depth=_MAX_DEPTH,
                pause=bool(pause),
                yield_gil=self._yield_gil,
                result=_Result,
                key_rule=self._key_info_for,
                apply=self._apply,
                template=_TEMPLATE,
                key_value=_KEY_VALUE,
                first_key_value=_FIRST_KEY_VALUE,
            )
            self._walker = walker
            self._walk = walker.walk
            self._compiled = walker.compute

    # -- public API -----------------------------------------------------------------

    def twin(self, pause: float = 0.0) -> Scrubber:
        """A scrubber with the same rules and its own caches, for another thread (this one isn't thread-safe)."""
        return Scrubber(self.rules, self._hash_key, self._time_limit, pause, self.identity_keys)

    def time_limit_for(self, size: int) -> float:
        """The time bound for a payload of `size` bytes: the configured one, scaled up for big payloads."""
        return self._time_limit * max(1.0, size / _TIME_LIMIT_BYTES)

    def scrub(
        self, payload: Any, root: str = "", meta: dict[str, Any] | None = None, time_limit: float | None = None
    ) -> Any:
        """Scrub a JSON value in place (returning the new root); remarks go into `meta` if given."""
        self._budget = self._time_limit if time_limit is None else time_limit
        self._deadline = time.perf_counter() + self._budget
        self._containers = 0
        plan = self._root_plan(root)
        if plan.keep or plan.dead:
            return payload
        try:
            return self._walk(payload, plan, [], meta, 0, None)
        finally:
            self._deadline = math.inf

    def scrub_event(
        self, event: dict[str, Any], remarks: dict[str, Any] | None = None, time_limit: float | None = None
    ) -> dict[str, Any]:
        """Scrub an event or transaction, merging remarks into its `_meta`.

        A value found sensitive in one place is sensitive everywhere: after the rules ran, any other
        occurrence of it (a log parameter, a repeated token) is replaced the same way. `remarks`, if
        given, receives this run's own `_meta` (without what the event carried before).
        """
        meta: dict[str, Any] = {}
        existing = event.pop("_meta", None)
        self._found = {}
        user = identity.from_user(event, bool(self.identity_keys))
        if self._walker is not None:
            self._walker.gather(True)
        try:
            self.scrub(event, "", meta, time_limit)
            if self.identity_keys:
                identity.add_found(user, self._found)
            for value, entry in user.found.items():
                self._found.setdefault(value, entry)
            if self._found and self._still_found(event):
                Propagator(self, self._found, meta, user.bounded).walk(event, self._root, [])
        finally:
            self._found = None
            if self._walker is not None:
                self._walker.gather(False)
        if remarks is not None:
            remarks.update(meta)
        if isinstance(existing, dict):
            meta = merge_meta(existing, meta)
        if meta:
            event["_meta"] = meta
        return event

    def _still_found(self, event: dict[str, Any]) -> bool:
        """Whether a value found sensitive is still somewhere the Propagator would replace it: from the
        strings the C walk left (no second walk), or looked for in the whole event."""
        assert self._found is not None
        if self._walker is not None:
            seen = self._walker.seen(self._found)
            if seen is not None:
                return seen
        return occurs_in(self._found, event)

    def scrub_text(
        self, text: str, root: str, remarks: list[Remark] | None = None, time_limit: float | None = None
    ) -> str | None:
        """Scrub free text (a text attachment) as one string at shape `root`; its remarks go to `remarks`."""
        self._budget = self._time_limit if time_limit is None else time_limit
        self._deadline = time.perf_counter() + self._budget
        plan = self._root_plan(root)
        if plan.keep or not plan.scan:
            return text
        try:
            result = self._compute(text, plan)
        finally:
            self._deadline = math.inf
        if result is _UNCHANGED:
            return text
        if remarks is not None:
            remarks.extend(result.remarks)
        return result.value

    # -- walking ------------------------------------------------------------------------

    def _value(
        self, value: Any, plan: _Plan, path: list[str], meta: dict[str, Any] | None, depth: int, key: str | None
    ) -> Any:
        """Scrub one value whose plan is known; `key` is its name in the parent (None at the root)."""
        kind = type(value)
        if plan.key_rule is not None and value is not None and kind is not bool:
            return self._redact_whole(value, plan.key_rule, path, key, meta)
        if kind is str:
            if plan.scan and len(value) >= plan.min_len:
                return self._scrub_string(value, plan, path, key, meta)
        elif kind is dict or kind is list:
            if key is not None:
                path.append(key)
            if kind is dict:
                self._walk_dict(value, plan, path, meta, depth + 1)
            else:
                self._walk_list(value, plan, path, meta, depth + 1)
            if key is not None:
                path.pop()
        elif kind is int and plan.detector_rules and abs(value) >= 10**12:
            return self._scrub_number(value, plan, path, key, meta)
        return value

    def _enter(self, depth: int) -> None:
        """Bounds checked on entering a container: nesting depth, the time bound, and pauses on a worker."""
        if depth > _MAX_DEPTH:
            raise ScrubError(f"payload nested deeper than {_MAX_DEPTH} levels")
        self._containers += 1
        if self._containers & 31 == 0 or self._pause:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """The time bound, and pauses on a worker thread (every 32 containers, or every one on a worker)."""
        if time.perf_counter() > self._deadline:
            raise ScrubError(f"scrubbing took longer than {self._budget:g}s")
        if self._pause:
            self._yield_gil()

    def _walk_dict(
        self, obj: dict[str, Any], plan: _Plan, path: list[str], meta: dict[str, Any] | None, depth: int
    ) -> None:
        # The hot loop: strings are handled inline, with memoized results checked first.
        self._enter(depth)
        children = plan.children
        renamed: list[str] = []
        for key, value in obj.items():
            kind = type(value)
            child = children.get(key)
            if child is None:
                if (value is None or kind is bool) and not _key_may_hold_data(key):
                    continue  # nothing to scrub in the value, nor in its key (no plan needed, as in C)
                child = self._child(plan, key)
            if child.rename is not None:
                renamed.append(key)
            if kind is str:
                if child.skip:
                    continue
                if child.key_rule is None:
                    if not child.scan or len(value) < child.min_len or child.strings.get(value) is _UNCHANGED:
                        continue
                    new = self._scrub_string(value, child, path, key, meta)
                else:
                    new = self._redact_whole(value, child.key_rule, path, key, meta)
            elif kind is dict or kind is list:
                if child.skip:
                    continue
                if child.key_rule is None:
                    path.append(key)
                    if kind is dict:
                        self._walk_dict(value, child, path, meta, depth + 1)
                    else:
                        self._walk_list(value, child, path, meta, depth + 1)
                    path.pop()
                    continue
                new = self._redact_whole(value, child.key_rule, path, key, meta)
            elif kind is int:
                if child.skip:
                    continue
                new = self._value(value, child, path, meta, depth, key)
            elif kind is float:  # only a key rule applies to a float ({"password": 1.5})
                if child.skip or child.key_rule is None:
                    continue
                new = self._redact_whole(value, child.key_rule, path, key, meta)
            else:
                continue  # None and booleans carry nothing to scrub
            if new is not value:
                obj[key] = new
        if renamed:
            self._rename_keys(obj, renamed, plan, path, meta)

    def _walk_list(
        self, items: list[Any], plan: _Plan, path: list[str], meta: dict[str, Any] | None, depth: int
    ) -> None:
        self._enter(depth)
        if items and type(items[0]) is list and _is_pair_list(items):  # [["Header", "value"], ...] form
            for index, pair in enumerate(items):
                child = self._child(plan, pair[0])
                if child.skip or pair[1] is None:
                    continue
                path.append(str(index))
                new = self._value(pair[1], child, path, meta, depth, "1")
                path.pop()
                if new is not pair[1]:
                    pair[1] = new
            return
        child = plan.item or self._child(plan, "#")
        plan.item = child
        if child.skip:
            return
        strings = child.strings
        for index, value in enumerate(items):
            kind = type(value)
            if kind is str and child.key_rule is None:
                if not child.scan or len(value) < child.min_len or strings.get(value) is _UNCHANGED:
                    continue
                new = self._scrub_string(value, child, path, str(index), meta)
            elif kind is str or kind is dict or kind is list or kind is int or kind is float:
                new = self._value(value, child, path, meta, depth, str(index))
            else:
                continue
            if new is not value:
                items[index] = new

    def _redact_each(
        self, value: dict[str, Any] | list[Any], rule: Rule, path: list[str], key: str | None,
        meta: dict[str, Any] | None, depth: int,
    ) -> Any:  # fmt: skip
        """A container under a key rule: each value in it redacted, its keys and shape kept (a cookies mapping
        stays a mapping of cookie names, as Sentry's schema wants it)."""
        if key is not None:
            path.append(key)
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for name, item in list(pairs):
            if item is not None and type(item) is not bool:
                value[name] = self._redact_whole(item, rule, path, str(name), meta, depth)  # type: ignore[index,call-overload]
        if key is not None:
            path.pop()
        return value

    def _redact_whole(
        self,
        value: Any,
        rule: Rule,
        path: list[str],
        key: str | None,
        meta: dict[str, Any] | None,
        depth: int = 0,
    ) -> Any:
        if type(value) is dict and "value" in value and value.keys() <= _TYPED_VALUE_KEYS:
            # A typed attribute ({"type": "string", "value": ...}, as in logs and spans): keep the shape.
            if value["value"] is None or type(value["value"]) is bool:
                return value  # nothing there to redact (and scrubbing stays idempotent)
            if key is not None:
                path.append(key)
            value["value"] = self._redact_whole(value["value"], rule, path, "value", meta, depth)
            if key is not None:
                path.pop()
            return value
        action = rule.action
        if type(value) is dict or type(value) is list:
            if not value:
                return value  # nothing to hide ({"cookies": {}}), and the shape Sentry expects is kept
            if action.type is not ActionType.REMOVE and depth < _MAX_REDACT_DEPTH:
                return self._redact_each(value, rule, path, key, meta, depth + 1)
        elif value == "":
            return value
        original = value if isinstance(value, str) else _to_text(value)
        if action.type is ActionType.REMOVE:
            record(meta, path, key, [[rule.id, "x"]], len(original))
            return None
        if isinstance(value, str) and PLACEHOLDER.fullmatch(value):
            return value  # already scrubbed: keep scrubbing idempotent
        new, kind = self._apply(original, rule)
        if new == original:
            return value
        record(meta, path, key, [[rule.id, kind, 0, len(new)]], len(original))
        self._remember(original, new, rule.id, kind)
        return new

    def _scrub_string(
        self, text: str, plan: _Plan, path: list[str], key: str | None, meta: dict[str, Any] | None
    ) -> Any:
        if len(text) <= _MAX_CACHED_STRING:
            result = plan.strings.get(text)
            if result is None:
                if self._cached > _CACHE_LIMIT:
                    self._reset()
                result = self._compute(text, plan)
                plan.strings[text] = result
                self._cached += 1
        else:
            result = self._compute(text, plan)
        if result is _UNCHANGED:
            return text
        record(meta, path, key, result.remarks, len(text))
        if self._found is not None and result.found:
            for original, replacement in result.found:
                self._found.setdefault(original, replacement)
        return result.value

    def _remember(self, original: str, replacement: str, rule_id: str, kind: str) -> None:
        """Note a sensitive value so that its other occurrences are replaced too."""
        if self._found is not None and propagates(original):
            self._found.setdefault(original.strip("'\""), (replacement, rule_id, kind))

    def _scrub_number(
        self, value: int, plan: _Plan, path: list[str], key: str | None, meta: dict[str, Any] | None
    ) -> Any:
        text = str(value)
        for rule in plan.detector_rules:
            if rule.detector is not None and rule.detector.name in _NUMERIC_DETECTORS and any(rule.detector.find(text)):
                new, kind = self._apply(text, rule)
                record(meta, path, key, [[rule.id, kind, 0, len(new)]], len(text))
                return None if rule.action.type is ActionType.REMOVE else new
        return value


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


# What the rest of the relay, and the tests, reach for here.
__all__ = [
    "_SAFE_SHAPE",
    "_TEMPLATE",
    "_UNCHANGED",
    "Remark",
    "ScrubError",
    "Scrubber",
    "_Family",
    "_Plan",
    "_Result",
    "_alternative",
    "_info",
    "_key_values",
]


def _key_may_hold_data(key: Any) -> bool:
    """Whether a key without a plan might hold personal data itself (_walker.c's key_may_hold_data)."""
    if type(key) is not str or _SAFE_SHAPE.fullmatch(key):
        return False
    return fired(key) != 0 or PERCENT_ESCAPE.search(key) is not None
