"""Built-in detectors, by family: what the rule packs' `detector:` names, and the triggers that wake them.

`builtin` holds the first detectors and the seven families the C parts know by heart. The other modules
add detectors whose families are woken by keywords (a table compiled into one C keyword scan, as gitleaks
does with its `keywords`) or by a built-in family's trigger. Each module exports `DETECTORS` (a tuple of
`Detector`, each with its `family`) and `TRIGGERS` (family name -> `Trigger`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from types import ModuleType

from . import assignments, builtin, labels, national, phones, secret_words, tokens
from .base import Detector, Span, Trigger, combine, fold, keyword_trigger
from .builtin import SECRET_WORDS, STARTS, WINDOWS

# The modules that add detectors beyond `builtin`, in rule-table order.
_MODULES: tuple[ModuleType, ...] = (secret_words, labels, tokens, assignments, national, phones)

DETECTORS: dict[str, Detector] = dict(builtin.DETECTORS)
# family -> the cheap test that wakes it (the reference for C's `fired`, and its fallback)
TRIGGERS: dict[str, Callable[[str], bool]] = dict(builtin.TRIGGERS)
# keyword families, in bit order after the built-in ones; and families woken by another's trigger
KEYWORD_FAMILIES: dict[str, Trigger] = {}
# keyword families whose label a key name can be: `{"ssn": "078-05-1120"}` is read as "ssn: 078-05-1120"
KEY_LABEL_FAMILIES: frozenset[str] = frozenset(
    name for module in _MODULES for name in getattr(module, "KEY_LABEL_FAMILIES", ())
)
_SAME_AS: dict[str, str] = {}

for _module in _MODULES:
    for _name, _trigger in _module.TRIGGERS.items():
        if _name in TRIGGERS or _name in _SAME_AS:
            raise ValueError(f"{_module.__name__}: family {_name!r} is defined twice")
        if _trigger.same_as:
            if _trigger.same_as not in builtin.TRIGGERS:
                raise ValueError(f"{_module.__name__}: family {_name!r}: no built-in family {_trigger.same_as!r}")
            _SAME_AS[_name] = _trigger.same_as
        else:
            KEYWORD_FAMILIES[_name] = _trigger
            TRIGGERS[_name] = keyword_trigger(_trigger)
    for _detector in _module.DETECTORS:
        if _detector.name in DETECTORS:
            raise ValueError(f"{_module.__name__}: detector {_detector.name!r} is defined twice")
        if _detector.family not in TRIGGERS and _detector.family not in _SAME_AS:
            raise ValueError(
                f"{_module.__name__}: detector {_detector.name!r}: family {_detector.family!r} has no trigger"
            )
        DETECTORS[_detector.name] = _detector


def find_all(name: str, text: str) -> Iterator[Span]:
    """Spans found by the named detector (for tests and the explain tool)."""
    return DETECTORS[name].find(text)


def _fired_in_python(text: str) -> int:
    """The bits (in FAMILIES order) of the families whose trigger fires on `text` (keyword families: the active)."""
    return sum(
        1 << index
        for index, name in enumerate(FAMILIES)
        if (name not in KEYWORD_FAMILIES or name in _active) and TRIGGERS[name](text)
    )


# `fired(text)`: every family's trigger in one call. In C (_triggers.c, one pass over the string, then one
# keyword scan) when it was built; TRIGGERS stay the reference it is tested against, and the fallback.
FAMILIES: tuple[str, ...] = (*builtin.TRIGGERS, *KEYWORD_FAMILIES)
fired: Callable[[str], int] = _fired_in_python
if not os.environ.get("RELAY_PURE_PYTHON"):
    try:
        from .. import _walker
    except ImportError:
        pass
    else:
        FAMILIES = (*_walker.FAMILIES, *KEYWORD_FAMILIES)
        fired = _walker.fired

# The keyword families some loaded rule uses: only those are scanned for (a keyword costs time on every new
# string, and an opt-in family such as given names has thousands). Scrubbers activate theirs when built.
_active: set[str] = set()


def activate(families: set[str] | frozenset[str]) -> None:
    """Scan for these keyword families too from now on (families of the rules a scrubber was built with)."""
    new = {name for name in families if name in KEYWORD_FAMILIES} - _active
    if new:
        _active.update(new)
        install_keywords()


def install_keywords() -> None:
    """Hand the active keyword families to the C trigger (tests that change them call it again)."""
    if fired is not _fired_in_python:
        from .. import _walker

        _walker.set_keywords(
            tuple(
                (1 << FAMILIES.index(name), trigger.keywords, trigger.fold)
                for name, trigger in KEYWORD_FAMILIES.items()
                if name in _active
            )
        )


install_keywords()
if len(FAMILIES) > 62:
    raise ValueError("at most 62 detector families: each needs a bit of a C long")
FAMILY_BITS = {name: 1 << index for index, name in enumerate(FAMILIES)}
FAMILY_BITS.update({name: FAMILY_BITS[target] for name, target in _SAME_AS.items()})
assert set(FAMILIES) == set(TRIGGERS), "every detector family needs a trigger"
assert {d.family for d in DETECTORS.values()} <= set(FAMILY_BITS), "every detector's family needs a trigger"

# What older callers and the tests reach for by these names.
_SECRET_WORDS_LOWER = builtin._SECRET_WORDS_LOWER
_NUMERIC_RUN = builtin._NUMERIC_RUN
_numeric_run_worth_scanning = builtin._numeric_run_worth_scanning

__all__ = [
    "DETECTORS",
    "FAMILIES",
    "FAMILY_BITS",
    "KEYWORD_FAMILIES",
    "KEY_LABEL_FAMILIES",
    "SECRET_WORDS",
    "STARTS",
    "TRIGGERS",
    "WINDOWS",
    "Detector",
    "Span",
    "Trigger",
    "activate",
    "combine",
    "find_all",
    "fired",
    "fold",
]
