"""A bounded fuzz of the C parts against their Python twins, on any Unicode text: `make sanitize` runs it long.

The parity tests beside it draw from the shapes the detectors look at; these draw from any text and any key, at
any position, so that the sanitizers see the C parts read every kind of string. RELAY_FUZZ_EXAMPLES sets the
budget per test (a few examples in the ordinary suite).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.scrub import detectors, engine, validators

from .test_compute import FRAGMENTS, SHAPES, as_tuple
from .test_compute import scrubber as compute_scrubber
from .test_scans import regex_start
from .test_triggers import python_bits
from .test_validators_c import PYTHON as PYTHON_VALIDATORS
from .test_walker import KEYS, TEXT, outcome, scrubbers

pytestmark = pytest.mark.skipif(engine.Walker is None, reason="the C parts are not built")

if engine.Walker is not None:
    from relay.scrub import _walker

FUZZ = settings(
    max_examples=int(os.environ.get("RELAY_FUZZ_EXAMPLES", "20")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Any text (every Unicode kind: one, two and four bytes a character), and the fragments that wake detectors.
TEXTS = st.lists(FRAGMENTS | st.text(max_size=16) | st.text("0123456789 +-.()/", max_size=16), max_size=10).map("".join)
EVENTS = st.recursive(
    TEXTS | TEXT | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none(),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(KEYS | st.text(max_size=12), inner, max_size=6)
        | st.lists(st.lists(st.text(max_size=12) | TEXTS, min_size=2, max_size=2), min_size=1, max_size=4)
    ),
    max_leaves=30,
)


@FUZZ
@given(payload=st.dictionaries(KEYS | st.text(max_size=12), EVENTS, max_size=6), event=st.booleans())
def test_c_and_python_walks_agree_on_any_event(payload: dict[str, Any], event: bool) -> None:
    """On any event, the C walk and the Python walk give the same values, `_meta` and errors."""
    in_c, in_python = scrubbers()
    assert outcome(in_c, payload, event) == outcome(in_python, payload, event)


@FUZZ
@given(text=TEXTS, shape=st.sampled_from(SHAPES))
def test_c_and_python_compute_agree_on_any_text(text: str, shape: str) -> None:
    """On any text, the C compute and the Python one give the same value, remarks and found values."""
    scrub = compute_scrubber()
    plan = scrub._root_plan(shape)
    assert scrub._compiled is not None
    assert as_tuple(scrub._compiled(text, plan)) == as_tuple(scrub._compute_python(text, plan))


@FUZZ
@given(text=TEXTS, data=st.data())
def test_scans_agree_with_their_regexes_anywhere_in_any_text(text: str, data: st.DataObject) -> None:
    """From any position of any text, the C scans answer as the regexes, and a position off the text raises."""
    pos = data.draw(st.integers(0, len(text)))
    high = data.draw(st.integers(pos, len(text)))
    for family in ("numeric", "words", "token"):
        if family != "words" or text.isascii():
            assert _walker.next_start(detectors.FAMILY_BITS[family], text, pos, high) == regex_start(
                family, text, pos, high
            )
        _walker.may_begin(detectors.FAMILY_BITS[family], text, pos)
    runs, _, _, worth = detectors.WINDOWS["numeric"]
    found = runs.search(text, pos)
    expected = None if found is None else (found.start(), found.end())
    assert _walker.next_run(text, pos) == expected
    if found is not None:
        assert _walker.worth_scanning(text, *found.span()) == worth(text, *found.span())
    off = data.draw(st.integers(-(2**62), -1) | st.integers(len(text) + 1, 2**62))
    with pytest.raises(ValueError):
        _walker.next_run(text, off)
    with pytest.raises(ValueError):
        _walker.worth_scanning(text, pos, off)


@FUZZ
@given(text=TEXTS, name=st.sampled_from(sorted(PYTHON_VALIDATORS)))
def test_c_validators_and_triggers_agree_on_any_text(text: str, name: str) -> None:
    """On any text, each C validator gives the Python verdict, and the C triggers fire as the Python ones."""
    assert validators.compiled()[name](text) is PYTHON_VALIDATORS[name](text)
    assert _walker.fired(text) == python_bits(text, detectors.FAMILIES)
