"""The engine's per-shape plans, the memoized string results, and what the C parts read of them."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from operator import or_
from typing import Any

import regex

from ..errors import RelayError
from ..rules.model import ActionType, Rule

try:  # the tree walk in C (_walker.c), when it was built; engine.py's own walk is its pure-Python twin
    if os.environ.get("RELAY_PURE_PYTHON"):
        raise ImportError("RELAY_PURE_PYTHON is set")
    from ._walker import Walker as _Walker

    # (detectors' FAMILIES and `fired` come from the same module then: the walker's trigger bits are theirs)
    Walker: type[_Walker] | None = _Walker
except ImportError:
    Walker = None

_MAX_CACHED_STRING = 512
_CACHE_LIMIT = 100_000
# Enum members looked up once: `ActionType.X` is a slow class attribute lookup on Python 3.11.
_REPLACE, _REMOVE, _MASK, _HASH = ActionType.REPLACE, ActionType.REMOVE, ActionType.MASK, ActionType.HASH
_KEEP = ActionType.KEEP
# What the C compute (_compute.c) does with a span of a rule, as `_apply` and `_compute` would: write the
# placeholder, remove the whole value, drop a key=value pair's value, or call `_apply` (mask, hash).
_CODE_REPLACE, _CODE_REMOVE_WHOLE, _CODE_REMOVE_VALUE, _CODE_APPLY, _CODE_KEEP = range(5)

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
    # The key naming this plan holds personal data itself: (new key, remarks, original length), new key None when
    # a rule removes it. Set by `_child`; the walkers hand such keys to `_rename_keys`.
    rename: tuple[str | None, list[Remark], int] | None = None
    # The key naming this plan is a label of some detectors (`ssn`, `cpf`): its strings are read as "<label> <value>",
    # in Python (see Compute._labelled_spans).
    label: str | None = None
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

    def read_after(self, label: str) -> None:
        """Read this plan's strings after `label` (the key naming them), which only the Python compute does."""
        self.label = label
        self.spec = None
        self.refresh()

    def refresh(self) -> None:
        """Recompute the derived flags the walkers read."""
        self.skip = self.keep or self.dead
        self.scan = bool(self.families or self.pattern_rules or self.key_rules)
        numbers = bool(self.detector_rules)
        quick = (
            -1 if self.pattern_rules or self.label or Walker is None else reduce(or_, (f.bit for f in self.families), 0)
        )
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
            self.rename,
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
    any_key: regex.Pattern[str] | None = None  # the key rules' names together (None: ask each rule)


@dataclass(slots=True)
class _Result:
    """A memoized string result: new value (None = removed) and remarks."""

    value: str | None
    remarks: list[Remark]
    # The values found that are distinctive enough to replace elsewhere too (`propagates`), quotes
    # stripped, with what `_found` keeps for them: (replacement, rule id, remark type).
    found: list[tuple[str, tuple[str, str, str]]] | None = None


_UNCHANGED = _Result("", [])
# The matches one string may have (the C compute's RELAY_MAX_SPANS): a hostile string of tens of thousands of
# addresses fails closed (ScrubError: the item is dropped as scrub_failed) instead of costing quadratic time.
MAX_SPANS = 4096
_MIN_DETECTOR_LENGTH = 5  # no built-in detector matches fewer characters


def _info(rule: Rule, order: int) -> tuple[Any, ...]:
    """What the C compute needs of a rule: (rule, id, code, placeholder, order in the rule list)."""
    kind = rule.action.type
    if kind is ActionType.KEEP:
        code = _CODE_KEEP  # a keep detector's span wins its overlaps and is written as it was
    elif kind is _REMOVE:
        code = _CODE_REMOVE_VALUE if rule.keys is not None else _CODE_REMOVE_WHOLE
    elif kind is _MASK or kind is _HASH:
        code = _CODE_APPLY
    else:
        code = _CODE_REPLACE
    return (rule, rule.id, code, rule.placeholder, order)
