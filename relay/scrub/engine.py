"""The scrubbing engine: walks a JSON payload once, applying compiled rules by path.

Decisions that depend only on a node's path ("shape") are computed once per shape and cached,
and results for short strings are memoized, so a steady stream of similar events costs little.
Every change is recorded in Sentry's `_meta` format: `[rule_id, type, start, end]` plus `len`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import RelayError
from ..rules.keys import normalize_key
from ..rules.model import ActionType, Rule
from ..rules.selectors import SEP
from .detectors import FAMILY_BITS, STARTS, WINDOWS, combine, fired
from .meta import PLACEHOLDER, Propagator, merge_meta, occurs_in, propagates, record

try:  # the tree walk in C (_walker.c), when it was built; engine.py's own walk is its pure-Python twin
    if os.environ.get("RELAY_PURE_PYTHON"):
        raise ImportError("RELAY_PURE_PYTHON is set")
    from ._walker import Walker as _Walker

    # (detectors' FAMILIES and `fired` come from the same module then: the walker's trigger bits are theirs)
    Walker: type[_Walker] | None = _Walker
except ImportError:
    Walker = None

# key=value pairs inside strings: query strings, form bodies, log lines. A key begins the string or follows
# one of `?&;,` or whitespace. Consuming that separator (rather than looking behind for it) lets the regex
# engine skip ahead to separators in C. The pairs found are the same: a value runs up to a character that
# can't be in a value, and a key's first letter can, so a key's separator always comes after the previous
# pair. The pair at the very start is matched on its own (see _key_values).
_KEY_VALUE = re.compile(r"[?&;,\s]([A-Za-z][\w.\[\]-]{0,63})=([^&#\s;,'\"]+)")
_FIRST_KEY_VALUE = re.compile(r"([A-Za-z][\w.\[\]-]{0,63})=([^&#\s;,'\"]+)")
# printf and format placeholders in message templates: `password=%s` is not a password.
_TEMPLATE = re.compile(r"%(?:\([\w.]+\))?[-+ #0-9.]*[sdifrxXeEgGcaou]|\{[\w.]*(?::[^}]*)?\}")
# Whole strings that no built-in detector can match inside: timestamps, UUIDs and short numbers.
# They are most of what an event's unseen strings are, so they skip the detectors in one C-level test.
_SAFE_SHAPE = re.compile(
    r"\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d{1,9})?)?)?(?:Z|[+-]\d\d(?::?\d\d)?)?"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|-?\d{1,6}(?:\.\d+)?"
)
_MAX_DEPTH = 128
_TIME_LIMIT_BYTES = 64 * 1024  # payloads above this get a proportionally longer time bound
_TYPED_VALUE_KEYS = frozenset({"type", "value", "unit"})
_MAX_CACHED_STRING = 512
_CACHE_LIMIT = 100_000
_NUMERIC_DETECTORS = ("credit_card", "imei")
# Enum members looked up once: `ActionType.X` is a slow class attribute lookup on Python 3.11.
_REPLACE, _REMOVE, _MASK, _HASH = ActionType.REPLACE, ActionType.REMOVE, ActionType.MASK, ActionType.HASH
# What the C compute (_compute.c) does with a span of a rule, as `_apply` and `_compute` would: write the
# placeholder, remove the whole value, drop a key=value pair's value, or call `_apply` (mask, hash).
_CODE_REPLACE, _CODE_REMOVE_WHOLE, _CODE_REMOVE_VALUE, _CODE_APPLY = range(4)
# Families whose STARTS (and WINDOWS) the C compute finds itself (_scans.c), without their regexes.
_C_SCANS = frozenset({"numeric", "words", "token"})

Remark = list[Any]


class ScrubError(RelayError):
    """Scrubbing could not finish safely; the item must be dropped (fail closed)."""


@dataclass(frozen=True, slots=True)
class _Family:
    """Detectors of one family at one plan: a cheap trigger, then one combined regex."""

    bit: int  # the family's bit in `detectors.fired(text)`: its trigger
    rules: tuple[Rule, ...]
    pattern: re.Pattern[str]
    # by group number in `pattern`: each detector's rule, validator and group of the sensitive part
    members: tuple[tuple[Rule, Callable[[str], bool] | None, str] | None, ...]
    windows: tuple[re.Pattern[str], int, int, Callable[[str, int, int], bool]] | None = None  # scan only near runs
    starts: tuple[re.Pattern[str], bool] | None = None  # where matches can begin (and whether in lowercase)
    # What the C compute reads: (bit, pattern, members as (rule info, validator, secret group number) by
    # group number, windows, starts regex or None, starts in lowercase, each detector's own (rule info, pattern,
    # validator, secret group number) in rule order for `_alternative`, bit if in _C_SCANS else 0).
    spec: tuple[Any, ...] = ()


@dataclass(slots=True, eq=False)
class _Plan:
    """Everything the engine needs to know about nodes of one shape, plus its children's plans."""

    shape: str
    keep: bool  # an allowlist rule covers this subtree
    dead: bool  # no rule can apply here or beneath: skip the subtree
    key_rule: Rule | None  # the node's key names a sensitive value: redact it whole
    key_info: tuple[Any, ...] | None  # that rule's info (`_info`), for the C walker
    detector_rules: tuple[Rule, ...]  # built-in detectors, in rule order
    families: tuple[_Family, ...]  # those detectors grouped by family, each one alternation
    pattern_rules: tuple[Rule, ...]  # user regexes (the `regex` module, with timeouts)
    keep_rules: tuple[Rule, ...]  # allowlist patterns
    key_rules: tuple[Rule, ...]  # for key=value pairs inside strings
    min_len: int  # shorter strings can't match anything
    skip: bool = False  # keep or dead: nothing to do in this subtree
    scan: bool = False  # strings here are scanned by detectors, patterns or key=value rules
    children: dict[str, _Plan] = field(default_factory=dict)
    fast_children: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # the same children's `fast`
    item: _Plan | None = None
    strings: dict[str, _Result] = field(default_factory=dict)
    # What the C walker reads, in one tuple: (skip, key_rule, scan, min_len, strings, fast_children, numbers,
    # quick, pairs, spec, key_info, the plan); quick is the families' trigger bits when the walker may decide a
    # new string has nothing to find as `_compute` would (safe shape, or no trigger and no key=value pair),
    # else -1; spec is what the C compute needs (see _Selection.spec), or None where strings need
    # `_compute_python` (user patterns and allowlists, or no C parts).
    fast: tuple[Any, ...] = ()
    spec: tuple[Any, ...] | None = None  # its _Selection's

    def __post_init__(self) -> None:
        self.refresh()

    def adopt(self, key: str, child: _Plan) -> None:
        """Make `child` this plan's child under `key`."""
        self.children[key] = child
        self.fast_children[key] = child.fast

    def refresh(self) -> None:
        """Recompute the derived flags the walkers read."""
        self.skip = self.keep or self.dead
        self.scan = bool(self.families or self.pattern_rules or self.key_rules)
        numbers = bool(self.detector_rules)
        quick = -1 if self.pattern_rules or Walker is None else sum(family.bit for family in self.families)
        pairs = bool(self.key_rules)
        self.fast = (
            self.skip,
            self.key_rule,
            self.scan,
            self.min_len,
            self.strings,
            self.fast_children,
            numbers,
            quick,
            pairs,
            self.spec,
            self.key_info,
            self,
        )


@dataclass(frozen=True, slots=True)
class _Selection:
    """What the rules give at every shape that selects the same selectors (a plan's shape-independent part)."""

    keep: bool
    keep_keys: tuple[Rule, ...]
    key_rules: tuple[Rule, ...]
    detector_rules: tuple[Rule, ...]
    pattern_rules: tuple[Rule, ...]
    keep_rules: tuple[Rule, ...]
    families: tuple[_Family, ...]
    # What the C compute needs, where it can do these rules: (family specs, pairs, the rule info of key names
    # met in key=value text, its own memo); None where strings need `_compute_python`.
    spec: tuple[Any, ...] | None
    key_names: dict[str, Rule | None] = field(default_factory=dict)  # normalized key -> its key rule


@dataclass(slots=True)
class _Result:
    """A memoized string result: new value (None = removed) and remarks."""

    value: str | None
    remarks: list[Remark]
    # The values found that are distinctive enough to replace elsewhere too (`propagates`), quotes
    # stripped, with what `_found` keeps for them: (replacement, rule id, remark type).
    found: list[tuple[str, tuple[str, str, str]]] | None = None


_UNCHANGED = _Result("", [])
_MIN_DETECTOR_LENGTH = 5  # no built-in detector matches fewer characters


class Scrubber:
    """Applies an ordered list of rules to payloads; one instance per distinct rule list."""

    def __init__(
        self, rules: Sequence[Rule], hash_key: bytes = b"", time_limit: float = 0.25, pause: float = 0.0
    ) -> None:
        self.rules = tuple(rules)
        self._hash_key = hash_key
        self._time_limit = time_limit
        self._budget = time_limit
        # On a worker thread: sleep `pause` after each millisecond of work, so the event loop's thread
        # gets the GIL (and the core) promptly while a large payload is scrubbed.
        self._pause = pause
        self._last_pause = 0.0
        self._order = {id(rule): index for index, rule in enumerate(rules)}
        self._infos = {id(rule): _info(rule, index) for index, rule in enumerate(rules)}
        keep = [r for r in rules if r.action.type is ActionType.KEEP]
        # Audit-mode rules change nothing here: an Auditor runs them on a copy (see scrub.audit).
        act = [r for r in rules if r.action.type is not ActionType.KEEP and not r.audit]
        self._keep_subtree = [r for r in keep if r.detector is None and r.pattern is None and r.keys is None]
        self._keep_keys = [r for r in keep if r.keys is not None]
        self._keep_strings = [r for r in keep if r.detector is not None or r.pattern is not None]
        self._key_rules = [r for r in act if r.keys is not None]
        self._string_rules = [r for r in act if r.detector is not None or r.pattern is not None]
        # Each distinct selector, evaluated once per new shape; shapes that select the same ones share a _Selection.
        distinct = {id(r.selector): r.selector for r in (*keep, *act)}
        self._selectors = tuple(distinct.values())
        self._selector_index = {key: index for index, key in enumerate(distinct)}
        self._reach = tuple({id(r.selector): r.selector for r in (*self._string_rules, *self._key_rules)}.values())
        self._selections: dict[tuple[bool, ...], _Selection] = {}
        self._combined: dict[tuple[str, ...], re.Pattern[str]] = {}
        self._family_sets: dict[tuple[int, ...], tuple[_Family, ...]] = {}
        self._key_names: dict[tuple[tuple[Rule, ...], str], Rule | None] = {}
        self._cached = 0
        self._root = self._make_plan("", "")
        self._deadline = 0.0
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
        return Scrubber(self.rules, self._hash_key, self._time_limit, pause)

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
        return self._walk(payload, plan, [], meta, 0, None)

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
        if self._walker is not None:
            self._walker.gather(True)
        try:
            self.scrub(event, "", meta, time_limit)
            if self._found and self._still_found(event):
                Propagator(self, self._found, meta).walk(event, self._root, [])
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
        result = self._compute(text, plan)
        if result is _UNCHANGED:
            return text
        if remarks is not None:
            remarks.extend(result.remarks)
        return result.value

    # -- planning -----------------------------------------------------------------------

    def _root_plan(self, root: str) -> _Plan:
        """The plan at a root like `@log`: its segments are names, not keys, so key rules never apply to them."""
        plan = self._root
        for segment in root.split(SEP) if root else ():
            child = plan.children.get(segment)
            if child is None:
                shape = f"{plan.shape}{SEP}{segment}" if plan.shape else segment
                child = self._make_plan(shape, "")
                plan.adopt(segment, child)
            plan = child
        return plan

    def _child(self, plan: _Plan, key: str) -> _Plan:
        """The plan for `plan`'s child under `key` (`#` for list items), built once."""
        child = plan.children.get(key)
        if child is None:
            if self._cached > _CACHE_LIMIT:
                self._reset()
            shape = f"{plan.shape}{SEP}{key}" if plan.shape else key
            child = self._make_plan(shape, key)
            if plan.keep:
                child.keep = True
                child.refresh()
            plan.adopt(key, child)
            self._cached += 1
        return child

    def _reset(self) -> None:
        """Drop every plan and memoized string (bounded memory under endless new keys)."""
        self._root = self._make_plan("", "")
        self._cached = 0

    def _make_plan(self, shape: str, key: str) -> _Plan:
        selected = tuple(selector.matches(shape) for selector in self._selectors)
        selection = self._selections.get(selected)
        if selection is None:
            if len(self._selections) > _CACHE_LIMIT:
                self._selections.clear()
            selection = self._selections[selected] = self._select(selected)
        key_rule = None
        if key and key != "#" and selection.key_rules:
            normalized = normalize_key(key)
            known = selection.key_names
            if normalized in known:
                key_rule = known[normalized]
            else:
                if not any(r.keys is not None and r.keys.fullmatch(normalized) for r in selection.keep_keys):
                    for rule in selection.key_rules:
                        if rule.keys is not None and rule.keys.fullmatch(normalized):
                            key_rule = rule
                            break
                if len(known) > _CACHE_LIMIT:
                    known.clear()
                known[normalized] = key_rule
        dead = (
            key_rule is None
            and not selection.detector_rules
            and not selection.pattern_rules
            and not selection.key_rules
            and not any(selector.may_match_within(shape) for selector in self._reach)
        )
        return _Plan(
            shape=shape,
            keep=selection.keep,
            dead=dead,
            key_rule=key_rule,
            key_info=None if key_rule is None else self._infos[id(key_rule)],
            detector_rules=selection.detector_rules,
            families=selection.families,
            pattern_rules=selection.pattern_rules,
            keep_rules=selection.keep_rules,
            key_rules=selection.key_rules,
            min_len=1 if selection.pattern_rules else 3 if self._key_rules else _MIN_DETECTOR_LENGTH,
            spec=selection.spec,
        )

    def _select(self, selected: tuple[bool, ...]) -> _Selection:
        """The rules of the selectors marked in `selected` (in the order of `self._selectors`), in rule order."""

        def chosen(rules: Sequence[Rule]) -> tuple[Rule, ...]:
            return tuple(r for r in rules if selected[self._selector_index[id(r.selector)]])

        strings = chosen(self._string_rules)
        detector_rules = tuple(r for r in strings if r.detector is not None)
        pattern_rules = tuple(r for r in strings if r.pattern is not None)
        keep_rules = chosen(self._keep_strings)
        key_rules = chosen(self._key_rules)
        families = self._families(detector_rules)
        compiled = Walker is not None and not pattern_rules and not keep_rules
        return _Selection(
            keep=bool(chosen(self._keep_subtree)),
            keep_keys=chosen(self._keep_keys),
            key_rules=key_rules,
            detector_rules=detector_rules,
            pattern_rules=pattern_rules,
            keep_rules=keep_rules,
            families=families,
            spec=(tuple(family.spec for family in families), bool(key_rules), {}) if compiled else None,
        )

    def _families(self, rules: tuple[Rule, ...]) -> tuple[_Family, ...]:
        cache_key = tuple(id(r) for r in rules)
        cached = self._family_sets.get(cache_key)
        if cached is None:
            cached = self._family_sets[cache_key] = self._build_families(rules)
        return cached

    def _build_families(self, rules: tuple[Rule, ...]) -> tuple[_Family, ...]:
        by_family: dict[str, list[Rule]] = {}
        for rule in rules:
            assert rule.detector is not None
            by_family.setdefault(rule.detector.family, []).append(rule)
        families = []
        for name, members in by_family.items():
            ids = tuple(r.id for r in members)
            pattern = self._combined.get(ids)
            if pattern is None:
                pattern = self._combined[ids] = combine([r.detector for r in members if r.detector is not None])
            by_group: list[tuple[Rule, Callable[[str], bool] | None, str] | None] = [None] * (pattern.groups + 1)
            for index, rule in enumerate(members):
                assert rule.detector is not None
                group = f"d{index}"
                secret = f"{group}_secret" if rule.detector.has_secret_group else group
                by_group[pattern.groupindex[group]] = (rule, rule.detector.validate, secret)
            starts = STARTS.get(name)
            spec = (
                FAMILY_BITS[name],
                pattern,
                tuple(None if m is None else (self._infos[id(m[0])], m[1], pattern.groupindex[m[2]]) for m in by_group),
                WINDOWS.get(name),
                None if starts is None else starts[0],
                starts is not None and starts[1],
                tuple(
                    (
                        self._infos[id(rule)],
                        rule.detector.pattern,
                        rule.detector.validate,
                        rule.detector.pattern.groupindex["secret"] if rule.detector.has_secret_group else 0,
                    )
                    for rule in members
                    if rule.detector is not None
                ),
                FAMILY_BITS[name] if name in _C_SCANS else 0,
            )
            families.append(
                _Family(FAMILY_BITS[name], tuple(members), pattern, tuple(by_group), WINDOWS.get(name), starts, spec)
            )
        return tuple(families)

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
        for key, value in obj.items():
            kind = type(value)
            if kind is str:
                child = children.get(key) or self._child(plan, key)
                if child.skip:
                    continue
                if child.key_rule is None:
                    if not child.scan or len(value) < child.min_len or child.strings.get(value) is _UNCHANGED:
                        continue
                    new = self._scrub_string(value, child, path, key, meta)
                else:
                    new = self._redact_whole(value, child.key_rule, path, key, meta)
            elif kind is dict or kind is list:
                child = children.get(key) or self._child(plan, key)
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
                child = children.get(key) or self._child(plan, key)
                if child.skip:
                    continue
                new = self._value(value, child, path, meta, depth, key)
            elif kind is float:  # only a key rule applies to a float ({"password": 1.5})
                child = children.get(key) or self._child(plan, key)
                if child.skip or child.key_rule is None:
                    continue
                new = self._redact_whole(value, child.key_rule, path, key, meta)
            else:
                continue  # None and booleans carry nothing to scrub
            if new is not value:
                obj[key] = new

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

    def _redact_whole(
        self, value: Any, rule: Rule, path: list[str], key: str | None, meta: dict[str, Any] | None
    ) -> Any:
        if type(value) is dict and "value" in value and value.keys() <= _TYPED_VALUE_KEYS:
            # A typed attribute ({"type": "string", "value": ...}, as in logs and spans): keep the shape.
            if value["value"] is None or type(value["value"]) is bool:
                return value  # nothing there to redact (and scrubbing stays idempotent)
            if key is not None:
                path.append(key)
            value["value"] = self._redact_whole(value["value"], rule, path, "value", meta)
            if key is not None:
                path.pop()
            return value
        original = value if isinstance(value, str) else _to_text(value)
        action = rule.action
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

    def _yield_gil(self) -> None:
        now = time.perf_counter()
        if now - self._last_pause >= 0.001:
            time.sleep(self._pause)
            self._last_pause = time.perf_counter()
            self._deadline += self._last_pause - now  # pauses don't count against the time bound

    def _compute(self, text: str, plan: _Plan) -> _Result:
        """The result for a string not memoized: in C (`Walker.compute`) where the plan allows it."""
        if plan.spec is not None and self._compiled is not None:
            return self._compiled(text, plan)
        return self._compute_python(text, plan)

    def _compute_python(self, text: str, plan: _Plan) -> _Result:
        if self._pause:
            self._yield_gil()
        spans: list[tuple[int, int, Rule]] = []
        if _SAFE_SHAPE.fullmatch(text) is None:
            families = plan.families
            if families:
                triggered = fired(text)  # every family's cheap test, in one call
                for family in families:
                    if family.bit & triggered:
                        spans.extend(self._detector_spans(text, family))
        elif not plan.pattern_rules:
            return _UNCHANGED
        for rule in plan.pattern_rules:
            spans.extend(self._pattern_spans(rule, text))
        if plan.key_rules and "=" in text:
            for match in _key_values(text):
                key_rule = self._key_rule_for(match.group(1), plan)
                value = match.group(2)
                if key_rule is not None and not PLACEHOLDER.fullmatch(value) and not _TEMPLATE.fullmatch(value):
                    spans.append((match.start(2), match.end(2), key_rule))
        if not spans:
            return _UNCHANGED
        if "[" in text:  # never scrub inside a placeholder an earlier pass wrote (idempotency)
            written = [m.span() for m in PLACEHOLDER.finditer(text)]
            if written:
                spans = [s for s in spans if not any(s[0] < b and a < s[1] for a, b in written)]
                if not spans:
                    return _UNCHANGED
        if plan.keep_rules:
            kept = self._keep_spans(text, plan.keep_rules)
            spans = [s for s in spans if not any(s[0] < b and a < s[1] for a, b in kept)]
            if not spans:
                return _UNCHANGED
        for _, _, rule in spans:
            if rule.action.type is _REMOVE and rule.keys is None:
                return _Result(None, [[rule.id, "x"]])  # detectors and patterns remove the whole value
        accepted: list[tuple[int, int, Rule]] = []
        if len(spans) == 1:  # the usual case: nothing can overlap
            if not PLACEHOLDER.fullmatch(text, spans[0][0], spans[0][1]):
                accepted = spans
        else:
            # Where two spans overlap, the earlier rule wins.
            order = self._order
            spans.sort(key=lambda s: (order[id(s[2])], s[0]))
            for span in spans:
                if not PLACEHOLDER.fullmatch(text, span[0], span[1]) and not any(
                    span[0] < b and a < span[1] for a, b, _ in accepted
                ):
                    accepted.append(span)
            accepted.sort()  # by start: accepted spans don't overlap, so no two starts are equal
        out: list[str] = []
        remarks: list[Remark] = []
        found: list[tuple[str, tuple[str, str, str]]] = []
        cursor = 0
        length = 0
        for start, end, rule in accepted:
            original = text[start:end]
            replacement, kind = self._apply(original, rule)
            out.append(text[cursor:start])
            length += start - cursor
            out.append(replacement)
            remarks.append([rule.id, kind, length, length + len(replacement)])
            if propagates(original):
                found.append((original.strip("'\""), (replacement, rule.id, kind)))
            length += len(replacement)
            cursor = end
        if not remarks:
            return _UNCHANGED
        out.append(text[cursor:])
        return _Result("".join(out), remarks, found)

    def _detector_spans(self, text: str, family: _Family) -> list[tuple[int, int, Rule]]:
        """One scan with the family's combined regex, only where a match can be.

        A candidate a validator rejects (a Luhn-invalid order id, a date) doesn't end the search: every
        detector of the family is tried anchored at the same place, then the scan goes on one character
        further, so a real value inside or right after a look-alike is still found.
        """
        spans: list[tuple[int, int, Rule]] = []
        ranges = [(0, len(text))] if family.windows is None else self._ranges(text, family)
        if not ranges:
            return spans
        pattern = family.pattern
        members = family.members
        starts = None
        haystack = text
        if family.starts is not None:
            starts, lowercase = family.starts
            if lowercase:
                if text.isascii():
                    haystack = text.lower()  # ASCII only: positions don't move
                else:
                    starts = None
        done = 0
        for low, high in ranges:
            pos = low if low > done else done
            while pos < high:
                if starts is not None:
                    # Try the combined regex only where a match can begin: the same leftmost match as
                    # `pattern.search`, without running every alternative at every position in between.
                    candidate = starts.search(haystack, pos, high)
                    if candidate is None:
                        break
                    match = pattern.match(text, candidate.start(), high)
                    if match is None:
                        pos = candidate.start() + 1
                        continue
                else:
                    match = pattern.search(text, pos, high)
                    if match is None:
                        break
                member = members[match.lastindex or 0]  # the detector's outer group closes last
                assert member is not None
                rule, validate, secret = member
                if validate is None or validate(match.group()):
                    begin, finish = match.span(secret)
                    end = match.end()
                else:
                    found = _alternative(text, match.start(), family.rules, rule, match.group())
                    if found is None:
                        pos = match.start() + 1
                        continue
                    begin, finish, end, rule = found
                if finish > begin:
                    spans.append((begin, finish, rule))
                pos = done = max(end, match.start() + 1)
        return spans

    def _key_info_for(self, name: str, plan: _Plan) -> tuple[Any, ...] | None:
        """`_key_rule_for` for the C compute: the rule's info, or None."""
        rule = self._key_rule_for(name, plan)
        return None if rule is None else self._infos[id(rule)]

    @staticmethod
    def _ranges(text: str, family: _Family) -> list[tuple[int, int]]:
        """Where the family's matches can be: the whole text, or windows around its runs (merged)."""
        if family.windows is None:
            return [(0, len(text))]
        runs, before, after, worth = family.windows
        size = len(text)
        ranges: list[tuple[int, int]] = []
        for run in runs.finditer(text):
            start, end = run.span()
            if not worth(text, start, end):
                continue
            low = start - before if start > before else 0
            high = end + after if end + after < size else size
            if ranges and low <= ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], max(high, ranges[-1][1]))
            else:
                ranges.append((low, high))
        return ranges

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
        cache_key = (plan.key_rules, name)
        if cache_key in self._key_names:
            return self._key_names[cache_key]
        normalized = normalize_key(name)
        found = None
        for rule in plan.key_rules:
            if rule.keys is not None and rule.keys.fullmatch(normalized):
                found = rule
                break
        if len(self._key_names) > _CACHE_LIMIT:
            self._key_names.clear()
        self._key_names[cache_key] = found
        return found

    def _apply(self, original: str, rule: Rule) -> tuple[str, str]:
        action = rule.action
        kind = action.type
        if kind is _REPLACE:
            return rule.placeholder, "s"
        if kind is _REMOVE:  # a key=value pair inside a string: drop the value only
            return "", "x"
        if kind is _MASK:
            keep = min(action.keep_last, len(original))
            return action.mask_char * (len(original) - keep) + original[len(original) - keep :], "m"
        if kind is _HASH:
            digest = hmac.new(self._hash_key, original.encode(), hashlib.sha256).hexdigest()[:32]
            return f"[hash:{digest}]", "p"
        return rule.placeholder, "s"


def _alternative(
    text: str, start: int, rules: Sequence[Rule], rejected: Rule, candidate: str
) -> tuple[int, int, int, Rule] | None:
    """The first detector (in rule order) with a valid match at `start`, or a valid shorter prefix of one:
    (begin, end) of its sensitive part, where the match ends, and the rule.

    `rejected`'s validator has just turned down `candidate` here: it isn't asked again (validators are
    pure, and the Luhn and issuer checks of a long digit run are the costly part of this path).
    """
    for rule in rules:
        detector = rule.detector
        assert detector is not None
        own = detector.pattern.match(text, start)
        if own is None:
            continue
        if detector.validate is not None:
            value = own.group()
            if (rule is rejected and value == candidate) or not detector.validate(value):
                shorter = detector.shorter(own, text)
                if shorter is None:
                    continue
                own = shorter
        begin, finish = own.span("secret") if detector.has_secret_group else own.span()
        return begin, finish, own.end(), rule
    return None


def _info(rule: Rule, order: int) -> tuple[Any, ...]:
    """What the C compute needs of a rule: (rule, id, code, placeholder, order in the rule list)."""
    kind = rule.action.type
    if kind is _REMOVE:
        code = _CODE_REMOVE_VALUE if rule.keys is not None else _CODE_REMOVE_WHOLE
    elif kind is _MASK or kind is _HASH:
        code = _CODE_APPLY
    else:
        code = _CODE_REPLACE
    return (rule, rule.id, code, rule.placeholder, order)


def _key_values(text: str) -> list[re.Match[str]]:
    """The key=value pairs in `text`, in order (groups 1 and 2: key and value)."""
    first = _FIRST_KEY_VALUE.match(text)
    if first is None:
        return list(_KEY_VALUE.finditer(text))
    return [first, *_KEY_VALUE.finditer(text, first.end())]


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
