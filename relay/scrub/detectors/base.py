"""What every detector is: a candidate regex, a cheap pre-check, a validator, and the family whose trigger it shares.

Built-in patterns are written by us and use the standard `re` engine (linear enough, and faster);
user patterns from rule files use the `regex` module with a timeout (see rules.compiler).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Detector:
    """Finds one kind of sensitive value in a string."""

    name: str
    placeholder: str  # the default replacement, like "[email]"
    pattern: re.Pattern[str]
    hint: Callable[[str], bool]  # cheap test: False means the pattern cannot match
    validate: Callable[[str], bool] | None = None
    family: str = ""  # detectors of one family share a cheap trigger and a combined regex
    # Which rejected candidates may be cut short at a separator to a valid prefix ("4111 1111 1111 1111 2024"
    # is a card and a year): None for all. Phones: only international ones ("+44 20 7946 0958 4111 ..."), as
    # "5281 6291 3704" is one number, not a phone and a 3704.
    cut: Callable[[str], bool] | None = None

    @property
    def has_secret_group(self) -> bool:
        """Whether only the `(?P<secret>...)` part of a match is sensitive (e.g. a URL's password)."""
        return "secret" in self.pattern.groupindex

    def find(self, text: str) -> Iterator[Span]:
        """Spans of validated matches in `text`."""
        if not self.hint(text):
            return
        group = "secret" if self.has_secret_group else 0
        pattern = self.pattern
        validate = self.validate
        pos = 0
        while True:
            match = pattern.search(text, pos)
            if match is None:
                return
            if validate is not None and not validate(match.group(0)):
                # A look-alike candidate may hide a real value: try it cut short at a separator
                # ("4111 1111 1111 1111 2024" is a card and a year), then from the next character.
                candidate_start = match.start()
                shorter = self.shorter(match, text)
                if shorter is None:
                    pos = candidate_start + 1
                    continue
                match = shorter
            start, end = match.span(group)
            if end > start:
                yield start, end
            pos = max(match.end(), pos + 1)

    def shorter(self, match: re.Match[str], text: str) -> re.Match[str] | None:
        """The longest valid prefix of a rejected candidate that ends before a separator."""
        if self.cut is not None and not self.cut(match.group()):
            return None
        start, end = match.span()
        assert self.validate is not None
        # The separators after the first character, last first (found in C: most candidates have none).
        for cut in reversed([found.start() for found in _SEPARATOR.finditer(text, start + 1, end)]):
            shorter = self.pattern.fullmatch(text, start, cut)
            if shorter is not None and self.validate(shorter.group(0)):
                return shorter
        return None


_SEPARATOR = re.compile(r"[ ./-]")  # where `shorter` may cut


def combine(detectors: list[Detector]) -> re.Pattern[str]:
    """One alternation of several detectors, outer groups named d0, d1, ... in order (inner names prefixed)."""
    parts = []
    for index, detector in enumerate(detectors):
        source = detector.pattern.pattern.replace("(?P<", f"(?P<d{index}_").replace("(?P=", f"(?P=d{index}_")
        if detector.pattern.flags & re.IGNORECASE:
            source = f"(?i:{source})"
        parts.append(f"(?P<d{index}>{source})")
    return re.compile("|".join(parts))


def has_digits(n: int) -> Callable[[str], bool]:
    def hint(text: str) -> bool:
        count = 0
        for ch in text:
            if ch.isdecimal():  # any script's digits, as the regexes' \d
                count += 1
                if count >= n:
                    return True
        return False

    return hint


def contains(*needles: str) -> Callable[[str], bool]:
    return lambda text: any(n in text for n in needles)


@dataclass(frozen=True, slots=True)
class Trigger:
    """How a family of detectors is woken: by the trigger of another family, or by keywords.

    `same_as` names a built-in family ("numeric", "email", ...) whose trigger every match of this family
    also fires. Otherwise the trigger fires when the text holds one of `keywords`: compared with the text
    lowered character by character when `fold` is set (keywords are given in lower case), else exactly.
    Every match of every detector of the family must contain a keyword (or fire `same_as`): the engine
    skips strings whose trigger didn't fire.
    """

    keywords: tuple[str, ...] = ()
    fold: bool = True
    same_as: str = ""

    def __post_init__(self) -> None:
        if bool(self.keywords) == bool(self.same_as):
            raise ValueError("a trigger has keywords or same_as, not both or neither")
        for word in self.keywords:
            if len(word) < 2:
                raise ValueError(f"trigger keyword {word!r}: at least two characters")
            if self.fold and fold(word) != word:
                raise ValueError(f"trigger keyword {word!r}: give folded keywords in lower case")


def fold(text: str) -> str:
    """Each character lowered on its own (Unicode's simple lowercase mapping, as the C trigger does)."""
    if text.isascii():
        return text.lower()
    return "".join(_fold_char(ch) for ch in text)


def _fold_char(ch: str) -> str:
    lowered = ch.lower()
    return lowered if len(lowered) == 1 else "i" if ch == "\u0130" else ch


def keyword_trigger(trigger: Trigger) -> Callable[[str], bool]:
    """The Python trigger of a keyword family: the reference for the C one, and the fallback."""
    words = trigger.keywords

    def fires(text: str) -> bool:
        folded = fold(text) if trigger.fold else text
        return any(word in folded for word in words)

    return fires
