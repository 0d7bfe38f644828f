"""Sentry `_meta` remarks, and replacing further occurrences of values already found sensitive."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from .engine import Remark, Scrubber, _Plan

PLACEHOLDER = re.compile(r"\[(?:[a-z_]+|Filtered|hash:[0-9a-f]{32})\]")


def occurs_in(found: dict[str, tuple[str, str, str]], event: dict[str, Any]) -> bool:
    """Cheap check on the serialized event: does any sensitive value still occur?"""
    return _in_json(event, _needles(found))


def _needles(values: Iterable[str]) -> list[bytes]:
    """The values as they appear inside JSON text (escaped, without the quotes)."""
    return [orjson.dumps(value)[1:-1] for value in values]


def _in_json(value: Any, needles: list[bytes]) -> bool:
    """Whether one of `needles` occurs in `value`'s JSON: a C-speed test (True when it can't be serialized)."""
    try:
        text = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return True
    return any(needle in text for needle in needles)


def propagates(value: str) -> bool:
    """Long and distinctive enough that replacing its other occurrences can't hit ordinary text."""
    value = value.strip("'\"")
    if len(value) < 6 or PLACEHOLDER.fullmatch(value):
        return False
    return not (value.isalpha() and (value.islower() or value.isupper()))


class Propagator:
    """Replaces further occurrences of values already found sensitive, recording `_meta` remarks.

    It follows the same plans as the rules: allowlisted (`keep`) and rule-free (`dead`) subtrees,
    such as SDK info and ids, are left alone.
    """

    def __init__(
        self,
        scrubber: Scrubber,
        found: dict[str, tuple[str, str, str]],
        meta: dict[str, Any],
        bounded: frozenset[str] | set[str] = frozenset(),
    ) -> None:
        self._scrubber = scrubber
        self._found = found
        self._meta = meta
        self._bounded = bounded  # values replaced only as whole words (short names)
        # Longest first: where two start at the same place, the longer is replaced (no regex to compile, which
        # for a few long values cost milliseconds).
        self._values = sorted(found, key=len, reverse=True)
        self._needles = _needles(self._values)

    def walk(self, value: Any, plan: _Plan, path: list[str]) -> Any:
        """Return the value with every known-sensitive substring replaced."""
        if isinstance(value, str):
            return self._replace(value, path) if any(v in value for v in self._values) else value
        if isinstance(value, dict):
            shallow = len(path) < 2  # near the root, a subtree holding none of the values is passed over whole
            for key, child in value.items():
                if isinstance(child, str | dict | list):
                    if shallow and not isinstance(child, str) and not _in_json(child, self._needles):
                        continue
                    child_plan = self._scrubber._child(plan, key)
                    if child_plan.skip:
                        continue
                    path.append(key)
                    new = self.walk(child, child_plan, path)
                    path.pop()
                    if new is not child:
                        value[key] = new
        elif isinstance(value, list):
            item_plan = self._scrubber._child(plan, "#")
            if item_plan.skip:
                return value
            for index, child in enumerate(value):
                if isinstance(child, str | dict | list):
                    path.append(str(index))
                    new = self.walk(child, item_plan, path)
                    path.pop()
                    if new is not child:
                        value[index] = new
        return value

    def _replace(self, text: str, path: list[str]) -> str:
        # Every occurrence of every value, then leftmost first (longest first at one place), none overlapping.
        hits: list[tuple[int, int, str]] = []
        bounded = self._bounded
        for value in self._values:
            at = text.find(value)
            while at != -1:
                end = at + len(value)
                if value not in bounded or (
                    (at == 0 or not text[at - 1].isalnum()) and (end == len(text) or not text[end].isalnum())
                ):
                    hits.append((at, -len(value), value))
                at = text.find(value, at + 1)
        hits.sort()
        if not hits:
            return text
        out: list[str] = []
        remarks: list[Remark] = []
        cursor = length = 0
        for start, _, value in hits:
            if start < cursor:
                continue
            replacement, rule_id, kind = self._found[value]
            out.append(text[cursor:start])
            length += start - cursor
            out.append(replacement)
            remarks.append([rule_id, kind, length, length + len(replacement)])
            length += len(replacement)
            cursor = start + len(value)
        out.append(text[cursor:])
        record(self._meta, path, None, remarks, len(text))
        return "".join(out)


def record(
    meta: dict[str, Any] | None, path: list[str], key: str | None, remarks: list[Remark], original_length: int
) -> None:
    if meta is None:
        return
    node = meta
    for segment in path:
        node = node.setdefault(segment, {})
    if key is not None:
        node = node.setdefault(key, {})
    entry = node.setdefault("", {})
    entry.setdefault("rem", []).extend(remarks)
    entry.setdefault("len", original_length)


def merge_meta(existing: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    for key, value in new.items():
        if key == "" and isinstance(existing.get(""), dict):
            existing[""].setdefault("rem", []).extend(value.get("rem", []))
            existing[""].setdefault("len", value.get("len"))
        elif isinstance(value, dict) and isinstance(existing.get(key), dict):
            merge_meta(existing[key], value)
        else:
            existing[key] = value
    return existing


__all__ = ["PLACEHOLDER", "Propagator", "merge_meta", "occurs_in", "propagates", "record"]
