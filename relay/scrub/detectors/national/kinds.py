"""National identifiers as data: one row per identifier, and the two kinds of detector built from the rows.

A row (`NationalId`) says how the identifier is labelled in text (`SSN:`, `cpf=`, `身份证号码:`), every way
it is written (`value`), the check it must pass (python-stdnum's `is_valid` where it has one), and, if it
has one, the written form that identifies itself without a label (`strong`: `123.456.789-09`).

- Each row becomes a *labelled* detector: a label, a few separators, then the value, of which only the value
  is replaced. The rows of a region module share a keyword family woken by their labels, so these regexes
  run only on the rare strings that name an identifier. (A family per region, not one for all: the engine
  searches a family's detectors as one alternation of named groups, whose cost per character grows faster
  than the number of detectors.)
- The strong forms of all rows make one detector, `national_id`, a member of the built-in `numeric` family
  (every strong form holds a run of 7+ digits and separators). The engine tries that family only where its
  C scan finds a candidate start inside a window around a digit run worth scanning (9+ digits, a leading 0,
  two capitals just before), so `national_id` costs next to nothing; but the forms with fewer digits are
  found only where such a window covers them. An 8-digit DNI, and an NIE, NRIC or FIN (7 digits) at the very
  start of a string, need a label there (the labelled detectors).

Placeholders: `[id]`, except US SSNs (`[ssn]`, as the built-in `us_ssn` detector writes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import product

from ..base import Detector, Trigger, has_digits, keyword_trigger

STRONG_FAMILY = "numeric"  # the built-in family, see above

# What may follow a short label (`ssn`, `cpf`): its keywords are the label followed by each of these,
# so that `using` or `classname` don't wake the family.
_AFTER_WORD = " :=#_-\"'])\uff1a"  # \uff1a: the full-width colon of CJK text; "]" as in "[cnpj] 123..."
# Between the label and the value: a qualifier (`SSN no.`, `CPF nº`, `NHS number`), quotes, a colon.
_TAIL = (
    r"(?:[ _-]?card)?(?:[ _-]?(?:number|n[uú]m[eé]ro|nummer|num|nr|no|n[°º]|番号|号码|号|번호))?\.?"
    r"[ \t\"'\])]{0,3}[:=#\uff1a-]?[ \t\"']{0,3}"
)
# A value ends where a word, a longer number or a decimal part would go on.
_END = r"(?![0-9A-Za-z_]|[.,/-][0-9A-Za-z])"
_NOT_AFTER_WORD = r"(?<![^\W_])"
_NOT_BEFORE_LETTER = r"(?![^\W\d_])"


@dataclass(frozen=True, slots=True)
class Label:
    """A way to name an identifier in text, and the trigger keywords (lower case) every match of it holds."""

    pattern: str
    keywords: tuple[str, ...]
    first: str  # the characters (lower case) a match of `pattern` can begin with


def word(name: str) -> Label:
    """A short label (`ssn`, `nhs`) as a whole word, followed by a separator or a qualifier."""
    after = re.escape(_AFTER_WORD)
    return Label(rf"{_NOT_AFTER_WORD}{_literal(name)}(?=[{after}])", tuple(name + ch for ch in _AFTER_WORD), name[0])


def phrase(*words: str | tuple[str, ...], joined: bool = True) -> Label:
    """A label of words (`social security`), each given in its spellings, joined by ` `, `_`, `-` (or nothing)."""
    spellings = [(w,) if isinstance(w, str) else w for w in words]
    joint = "[ _-]?" if joined else "[ _-]"
    pattern = joint.join("(?:" + "|".join(_literal(s) for s in options) + ")" for options in spellings)
    joints = (" ", "_", "-", "") if joined else (" ", "_", "-")
    keywords = set()
    for choice in product(*spellings):
        for sep in joints:
            keywords.add(sep.join(choice))
    first = "".join(sorted({spelling[0] for spelling in spellings[0]}))
    return Label(rf"{_NOT_AFTER_WORD}{pattern}{_NOT_BEFORE_LETTER}", tuple(sorted(keywords)), first)


def term(name: str, pattern: str = "", first: str = "") -> Label:
    """A long, rare label (`aadhaar`, `burgerservicenummer`), or one in a script without case or spaces (`身份证`).

    `pattern` (default: the name itself) may add optional parts; each of its matches must contain `name`,
    and begin with one of `first` (default: the name's first character).
    """
    body = pattern or _literal(name)
    if name.upper() != name.lower():  # a cased script: a whole word
        return Label(rf"{_NOT_AFTER_WORD}{body}{_NOT_BEFORE_LETTER}", (name,), first or name[0])
    return Label(body, (name,), first or name[0])


def _literal(text: str) -> str:
    """`text` as a regex under the ASCII-only case-insensitive flag: other letters get both cases spelled out."""
    out = []
    for ch in text:
        upper = ch.upper()
        out.append(f"[{ch}{upper}]" if not ch.isascii() and len(upper) == 1 and upper != ch else re.escape(ch))
    return "".join(out)


def compact(value: str) -> str:
    """The letters and digits of a written value, upper-cased (what the checks compare)."""
    return re.sub(r"[^0-9A-Za-z]", "", value).upper()


def checked(is_valid: Callable[[str], bool]) -> Callable[[str], bool]:
    """A check of the compact value (python-stdnum's `is_valid`, or ours) that tolerates what it rejects."""
    return lambda value: is_valid(compact(value))


@dataclass(frozen=True, slots=True)
class NationalId:
    """One national identifier: its labels, how it is written, its check, and its self-identifying form."""

    name: str  # the detector's name, e.g. "id_gb_nino"
    labels: tuple[Label, ...]
    value: str  # regex (ASCII classes only) of every written form, matched after a label, case-insensitively
    check: Callable[[str], bool]  # the value as written -> valid?
    strong: str = ""  # regex of the forms that need no label (case-sensitive), "" if none is safe
    strong_check: Callable[[str], bool] | None = None  # a stricter check for those, if needed
    placeholder: str = "[id]"
    near_miss: bool = True  # whether a value failing `check` after the label is kept (not: SSNs, see americas.py)

    def __post_init__(self) -> None:
        object.__setattr__(self, "check", guarded(self.check))
        if self.strong_check is not None:
            object.__setattr__(self, "strong_check", guarded(self.strong_check))


def guarded(check: Callable[[str], bool]) -> Callable[[str], bool]:
    """`check`, with an exception it raises read as "not valid": python-stdnum's own bugs (its Chinese id
    check raises KeyError for some birth places) must not fail the scrubbing of an event."""

    def safe(value: str) -> bool:
        try:
            return bool(check(value))
        except Exception:  # any library error: the value is not a valid identifier
            return False

    return safe


def label_trigger(rows: Iterable[NationalId]) -> Trigger:
    """The keyword trigger of a family of labelled detectors: all their labels' keywords."""
    return Trigger(keywords=tuple(sorted({k for row in rows for label in row.labels for k in label.keywords})))


def labelled_detector(row: NationalId, family: str, trigger: Trigger) -> Detector:
    """The detector of `row` after one of its labels; only the value is replaced."""
    labels = "|".join(label.pattern for label in row.labels)
    # Most positions fail the first test, a class of the characters a label begins with (in both cases).
    first = {ch for label in row.labels for low in label.first for ch in (low, low.upper())}
    guard = "".join(re.escape(ch) for ch in sorted(first))
    pattern = re.compile(rf"(?=[{guard}])(?ai:(?:{labels}){_TAIL}(?P<secret>{row.value}){_END})")
    fires = keyword_trigger(trigger)
    check = row.check

    def validate(text: str) -> bool:
        # The match holds one of the family's keywords (else the engine may skip the string: reject it here
        # too, so that what is found never depends on what else the string holds), and its value is valid.
        match = pattern.fullmatch(text)
        return match is not None and fires(text) and check(match.group("secret"))

    return Detector(row.name, row.placeholder, pattern, lambda text: True, validate, family)


NEAR_MISS_FAMILY = "national_near_miss"
# A labelled value of any identifier's characters: digits, capitals and the separators they are written with.
_ANY_VALUE = r"[0-9A-Z](?:[0-9A-Z]|[ ./-](?=[0-9A-Z])){5,24}"


def near_miss_detector(rows: Sequence[NationalId], trigger: Trigger) -> Detector:
    """`national_id_near_miss`: a value after an identifier's label, written as that identifier is, that fails its
    check ("NHS number 283 175 9683"). A pack keeps it (`action: keep`): it is a mistyped or made-up number of
    that kind, not a phone number that happens to follow the label. The match is what a labelled detector of the
    identifier would match; a valid value of any identifier so labelled is not a near miss."""
    rows = [row for row in rows if row.near_miss]
    labels = [(re.compile(rf"(?ai:{'|'.join(label.pattern for label in row.labels)})"), row) for row in rows]
    # The labels grouped by the characters they can begin with, each group behind a lookahead for those: most
    # positions fail the first test (a class of all of them), and the rest try one group, not every label.
    groups: dict[str, list[str]] = {}
    for row in rows:
        for label in row.labels:
            chars = "".join(sorted({ch for low in label.first for ch in (low, low.upper())}))
            if label.pattern not in groups.setdefault(chars, []):
                groups[chars].append(label.pattern)
    guard = "".join(re.escape(ch) for ch in sorted(set("".join(groups))))
    every = "|".join(f"(?=[{re.escape(chars)}])(?:{'|'.join(labels)})" for chars, labels in groups.items())
    pattern = re.compile(rf"(?=[{guard}])(?P<label>(?ai:{every}))(?ai:{_TAIL})(?P<secret>{_ANY_VALUE}){_END}")
    fires = keyword_trigger(trigger)

    def validate(text: str) -> bool:
        match = pattern.fullmatch(text)
        if match is None or not fires(text):
            return False
        value, label_end = match.group("secret"), match.end("label")
        near = False
        for label_pattern, row in labels:
            own = label_pattern.match(text)  # (a label's lookahead reads the character after it)
            if own is None or own.end() != label_end or re.fullmatch(row.value, value, re.A | re.I) is None:
                continue
            if row.check(value):
                return False  # a valid identifier: its own detector replaces it
            near = True
        return near

    return Detector("national_id_near_miss", "", pattern, lambda text: True, validate, NEAR_MISS_FAMILY)


def strong_detector(rows: Sequence[NationalId]) -> Detector:
    """`national_id`: every row's self-identifying form in one alternation, valid if a row whose shape fits says so."""
    shapes = [(re.compile(row.strong), row.strong_check or row.check) for row in rows if row.strong]
    alternatives = "|".join(f"(?:{row.strong})" for row in rows if row.strong)
    pattern = re.compile(rf"(?<![0-9A-Za-z_.+-])(?:{alternatives}){_END}")

    def validate(text: str) -> bool:
        return any(shape.fullmatch(text) is not None and check(text) for shape, check in shapes)

    return Detector("national_id", "[id]", pattern, has_digits(6), validate, STRONG_FAMILY)
