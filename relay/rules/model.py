"""Compiled rules and rule packs."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import regex

from ..scrub.detectors import Detector
from .selectors import Selector


class ActionType(enum.StrEnum):
    """What a rule does to what it finds."""

    REMOVE = "remove"
    REPLACE = "replace"
    MASK = "mask"
    HASH = "hash"
    KEEP = "keep"


@dataclass(frozen=True, slots=True)
class Action:
    """An action and its parameters."""

    type: ActionType
    text: str | None = None  # replace: the replacement (else the detector's placeholder)
    mask_char: str = "*"
    keep_last: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Rule:
    """One compiled rule: a detector, a pattern or key names; where; and what to do."""

    id: str
    description: str
    action: Action
    selector: Selector
    detector: Detector | None = None
    pattern: regex.Pattern[str] | None = None
    group: int = 0
    keys: regex.Pattern[str] | None = None  # full-match on normalized key names
    source: str = ""
    line: int = 0
    audit: bool = False  # mode: audit: count and log what it would redact, change nothing

    @property
    def placeholder(self) -> str:
        """The replacement text for `replace`."""
        if self.action.text is not None:
            return self.action.text
        return self.detector.placeholder if self.detector is not None else "[Filtered]"


@dataclass(frozen=True, slots=True)
class RuleTest:
    """A test case carried in a rule file."""

    name: str
    input: Any
    expect: Any = None
    absent: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    line: int = 0


@dataclass(frozen=True, slots=True)
class RulePack:
    """A rule file: its rules, in order, and its tests."""

    name: str
    source: str
    description: str = ""
    rules: tuple[Rule, ...] = ()
    tests: tuple[RuleTest, ...] = field(default_factory=tuple)
