"""Plans: what the rules give at each shape (path) of a payload, built once per shape and cached.

`Planner` is a part of `Scrubber` (engine.py): the plan of a child key, the rules its selectors select,
the detector families, and keys that hold personal data themselves (renamed after their dict's walk).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import reduce
from operator import or_
from typing import Any

import regex

from ..rules.keys import normalize_key
from ..rules.model import Rule
from ..rules.selectors import SEP, Selector
from .detectors import FAMILY_BITS, KEY_LABEL_FAMILIES, STARTS, WINDOWS, combine, fired
from .meta import merge_meta
from .plans import _CACHE_LIMIT, _MIN_DETECTOR_LENGTH, _UNCHANGED, Remark, Walker, _Family, _Plan, _Result, _Selection

# Families whose STARTS (and WINDOWS) the C compute finds itself (_scans.c), without their regexes.
_C_SCANS = frozenset({"numeric", "words", "token"})


class Planner:
    """The planning part of a Scrubber (its state is the Scrubber's: see engine.Scrubber.__init__)."""

    _root: _Plan
    _cached: int
    _selectors: tuple[Selector, ...]
    _reach: tuple[Selector, ...]
    _selector_index: dict[int, int]
    _selections: dict[tuple[bool, ...], _Selection]
    _combined: dict[tuple[str, ...], re.Pattern[str]]
    _family_sets: dict[tuple[int, ...], tuple[_Family, ...]]
    _infos: dict[int, tuple[Any, ...]]
    _key_rules: list[Rule]
    _keep_subtree: list[Rule]
    _keep_keys: list[Rule]
    _keep_strings: list[Rule]
    _string_rules: list[Rule]
    _compute: Callable[[str, _Plan], _Result]

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
            if plan.label and child.label is None and key in _LABEL_INHERITED and child.families:
                child.read_after(plan.label)  # {"x-tfn": {"value": ["442 752 266"], "type": "array"}}: x-tfn's
            if type(key) is str and not child.skip and child.key_rule is None and key != "#":
                child.rename = self._key_rename(key, child)
                if child.rename is not None:
                    child.refresh()
            plan.adopt(key, child)
            self._cached += 1
        return child

    def _key_rename(self, key: str, child: _Plan) -> tuple[str | None, list[Remark], int] | None:
        """What a key becomes when it holds personal data itself ({"alice@x.com": 1}), else None."""
        if not child.scan or len(key) < child.min_len or child.pattern_rules or child.keep_rules or child.label:
            return None  # (user patterns and allowlists are written for values; keys get the built-in rules)
        result = self._compute(key, child)
        if result is _UNCHANGED or result.value == key:
            return None
        return result.value, result.remarks, len(key)

    def _rename_keys(
        self, obj: dict[str, Any], keys: list[str], plan: _Plan, path: list[str], meta: dict[str, Any] | None
    ) -> None:
        """Rename `obj`'s `keys` (each holds personal data) to their redactions, keeping the order of the keys.

        A redaction that is already a key gets a number ("[email] (2)"); `_meta` moves to the new name, with the
        key's own remarks under "key"; a key a rule removes goes with its value.
        """
        renames = {key: (plan.children.get(key) or self._child(plan, key)).rename for key in keys}
        node: dict[str, Any] | None = meta
        if node is not None:
            for segment in path:
                node = node.setdefault(segment, {})
        taken = {key for key in obj if key not in renames}
        items = list(obj.items())
        obj.clear()
        for key, value in items:
            rename = renames.get(key)
            if rename is None:
                obj[key] = value
                continue
            new, remarks, length = rename
            moved = node.pop(key, None) if node is not None else None
            if new is None:
                continue
            name, count = new, 2
            while name in taken:
                name, count = f"{new} ({count})", count + 1
            taken.add(name)
            obj[name] = value
            if node is not None:
                entry = node.setdefault(name, {})
                if isinstance(moved, dict):
                    merge_meta(entry, moved)
                entry.setdefault("", {})["key"] = {"rem": remarks, "len": length}

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
                if not any(r.keys is not None and r.keys.fullmatch(normalized) for r in selection.keep_keys) and (
                    selection.any_key is None or selection.any_key.fullmatch(normalized) is not None
                ):
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
        plan = _Plan(
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
        if key and key != "#" and key_rule is None and type(key) is str:
            label = _key_label(key, selection.families)
            if label is not None:
                plan.read_after(label)
        return plan

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
        try:  # every key rule's names in one regex: most keys match none, and then one call says so
            any_key = regex.compile(
                "|".join(f"(?:{r.keys.pattern})" for r in key_rules if r.keys is not None), regex.IGNORECASE
            )
        except regex.error:
            any_key = None
        compiled = Walker is not None and not pattern_rules and not keep_rules
        return _Selection(
            keep=bool(chosen(self._keep_subtree)),
            keep_keys=chosen(self._keep_keys),
            key_rules=key_rules,
            detector_rules=detector_rules,
            pattern_rules=pattern_rules,
            keep_rules=keep_rules,
            families=families,
            any_key=any_key if key_rules else None,
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
                        rule.detector.cut,
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


_LABEL_INHERITED = frozenset({"#", "value"})  # a list's items, a typed attribute's value
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_KEY_LABEL_BITS = 0
for _name in KEY_LABEL_FAMILIES:
    _KEY_LABEL_BITS |= FAMILY_BITS[_name]


def _key_label(key: str, families: tuple[_Family, ...]) -> str | None:
    """The key as a label ("customerCpf" -> "customer_cpf: ") when it wakes a labelled family of the plan."""
    bits = _KEY_LABEL_BITS & reduce(or_, (f.bit for f in families), 0)
    if not bits or len(key) > 64:
        return None
    label = _CAMEL.sub("_", key) + ": "
    return label if fired(label) & bits else None
