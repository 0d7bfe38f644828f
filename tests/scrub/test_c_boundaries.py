"""The C parts at their edges: positions from Python are checked, and the walk survives pairs changed under it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import pytest

from relay.rules import load_pack
from relay.scrub import engine
from relay.scrub.engine import Scrubber

pytestmark = pytest.mark.skipif(engine.Walker is None, reason="the C parts are not built")

if engine.Walker is not None:
    from relay.scrub import _walker

TEXT = "call 020 7946 0958 or +44 20 7946 0958"
WORDS = 32  # the words family's bit (detectors.FAMILY_BITS["words"])
# Past the end by far: before the check, worth_scanning walked up to such an end one character at a time.
HUGE = [len(TEXT) + 1, 2**31, 2**62, sys.maxsize]


@pytest.mark.parametrize("at", [-1, -2, -len(TEXT), -(2**62), *HUGE])
def test_may_begin_rejects_a_position_outside_the_text(at: int) -> None:
    """may_begin raises ValueError, naming the bounds, for a position before or past the text."""
    with pytest.raises(ValueError, match=r"may_begin: at=-?\d+ is not a position in the text \(0 <= at <= 38\)"):
        _walker.may_begin(WORDS, TEXT, at)


@pytest.mark.parametrize("pos", [-1, -len(TEXT), -(2**62), *HUGE])
def test_next_run_rejects_a_position_outside_the_text(pos: int) -> None:
    """next_run raises ValueError for a position before or past the text."""
    with pytest.raises(ValueError, match=r"next_run: pos=-?\d+ is not a position in the text"):
        _walker.next_run(TEXT, pos)


@pytest.mark.parametrize(
    ("start", "end"),
    [(-1, 4), (-(2**62), 4), (-5, -1), (5, 4), (0, len(TEXT) + 1), (5, 2**62), (0, sys.maxsize), (2**62, 2**62)],
)
def test_worth_scanning_rejects_a_span_outside_the_text(start: int, end: int) -> None:
    """worth_scanning raises ValueError, at once, for a negative start, an end before it, or an end past the text."""
    with pytest.raises(ValueError, match=r"worth_scanning: start=-?\d+, end=-?\d+ is not a span of the text"):
        _walker.worth_scanning(TEXT, start, end)


def test_positions_beyond_a_c_size_overflow() -> None:
    """A position that doesn't fit a Py_ssize_t is an OverflowError from the argument parsing, not a wrap-around."""
    with pytest.raises(OverflowError):
        _walker.worth_scanning(TEXT, 0, 2**64 + 5)
    with pytest.raises(OverflowError):
        _walker.next_run(TEXT, -(2**64))


def test_the_ends_of_the_text_are_positions() -> None:
    """0 and len(text) are valid: nothing follows the end, and an empty text has one position."""
    end = len(TEXT)
    assert _walker.next_run(TEXT, end) is None
    assert _walker.next_run("", 0) is None
    assert _walker.next_run(TEXT, 0) == (5, 18)
    assert _walker.may_begin(WORDS, TEXT, 0) is True
    assert _walker.may_begin(WORDS, TEXT, end) is False  # right after a digit
    assert _walker.may_begin(WORDS, "", 0) is True
    assert _walker.worth_scanning(TEXT, end, end) is False
    assert _walker.worth_scanning(TEXT, 5, 18) is True
    assert _walker.worth_scanning("", 0, 0) is False


# -- a pair list ([["Header", "value"], ...]) changed while the walk is in it -------------------------------------


class Name(str):
    """A header name whose hashing (the walk's plan lookup) or formatting (the plan's making) runs `effect` once."""

    effect: Callable[[], object] | None = None
    on_format: bool = False

    def _fire(self) -> None:
        effect, self.effect = self.effect, None
        if effect is not None:
            effect()

    def __hash__(self) -> int:
        if not self.on_format:
            self._fire()
        return str.__hash__(self)

    def __format__(self, spec: str) -> str:
        if self.on_format:
            self._fire()
        return str.__format__(self, spec)


def scrubber() -> Scrubber:
    """A fresh scrubber with the C walk (fresh: a Name adopted into a plan stays in its children)."""
    scrub = Scrubber([*load_pack("secrets").rules, *load_pack("pii").rules], b"key", 5.0)
    assert scrub._walk.__qualname__ == "Walker.walk"
    return scrub


def headers_with(change: Callable[[list[Any], list[Any]], Callable[[], object]], on_format: bool = False) -> Any:
    """A payload whose first header's name, when the walk looks it up, runs `change(its pair, the list)`.

    Only the pair holds the name, so a name dropped from it is freed unless the walk holds it."""
    pair: list[Any] = [Name("X-Note"), "alice@example.com"]
    items = [pair, ["Authorization", "Bearer abcdefghijklmnop"]]
    pair[0].effect = change(pair, items)
    pair[0].on_format = on_format
    return {"headers": items}


def test_a_header_name_that_empties_its_pair_is_left_alone() -> None:
    """A name that empties its own pair while looked up: the walk skips that pair and goes on (it read past it)."""
    payload = headers_with(lambda pair, items: pair.clear)
    meta: dict[str, Any] = {}
    assert scrubber().scrub(payload, "", meta) == {"headers": [[], ["Authorization", "[Filtered]"]]}
    assert list(meta["headers"]) == ["1"]


def test_a_header_name_replaced_in_its_pair_is_held_by_the_walk() -> None:
    """A name that replaces itself in its pair (its last reference) while hashed: the walk still holds it."""
    payload = headers_with(lambda pair, items: lambda: pair.__setitem__(0, "X-Other"))
    assert scrubber().scrub(payload, "", {}) == {"headers": [["X-Other", "[email]"], ["Authorization", "[Filtered]"]]}


def test_a_header_value_replaced_while_the_name_is_looked_up_is_the_one_walked() -> None:
    """The value is read after the name's lookup, as the Python walk reads pair[1]: both scrub the new value."""

    def outcome(walk_in_c: bool) -> Any:
        scrub = scrubber()
        if not walk_in_c:
            scrub._walk, scrub._compiled, scrub._walker = scrub._value, None, None
        payload = headers_with(lambda pair, items: lambda: pair.__setitem__(1, "bob@example.org"))
        return scrub.scrub(payload, "", {})

    assert outcome(True) == outcome(False) == {"headers": [["X-Note", "[email]"], ["Authorization", "[Filtered]"]]}


def test_a_scrubber_callback_that_empties_the_pair_list_ends_the_walk() -> None:
    """A name whose formatting (in the scrubber's plan making, called back from C) empties the list: the walk ends."""
    payload = headers_with(lambda pair, items: items.clear, on_format=True)
    assert scrubber().scrub(payload, "", {}) == {"headers": []}


def test_a_scrubber_callback_that_shrinks_the_pair_keeps_the_walk_in_bounds() -> None:
    """A name whose formatting drops its pair's value: nothing is read or written past the pair's end."""
    payload = headers_with(lambda pair, items: pair.pop, on_format=True)
    assert scrubber().scrub(payload, "", {}) == {"headers": [["X-Note"], ["Authorization", "[Filtered]"]]}
