"""The C tree walk (`_walker.c`) gives exactly what the pure-Python walk gives: values, `_meta` and errors."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relay.rules import Rule, load_pack, parse_pack
from relay.scrub import engine
from relay.scrub.engine import Scrubber, ScrubError

RULES: list[Rule] = [
    *parse_pack(
        """rules:
  - id: t.keep_build
    description: build ids are not personal
    pattern: 'build-\\d+'
    action: keep
  - id: t.mask_account
    description: account numbers are masked
    keys: ['account.*']
    action: mask
    keep_last: 2
  - id: t.remove_ssn
    description: a social security number key is removed
    keys: [ssn]
    action: remove
  - id: t.hash_user
    description: user names are hashed
    selectors: [user.username]
    pattern: '.+'
    action: hash
  - id: t.keep_debug
    description: debug meta is left alone
    selectors: [debug_meta]
    action: keep
""",
        "walker.yml",
    ).rules,
    *load_pack("secrets").rules,
    *load_pack("pii").rules,
]

KEYS = st.sampled_from(
    ["message", "extra", "vars", "password", "apiKey", "account_no", "ssn", "headers", "user", "username",
     "request", "data", "debug_meta", "frames", "values", "0", "#", "note", "type", "value", "unit"]
)  # fmt: skip
TEXT = st.sampled_from(
    ["alice@example.com", "4111 1111 1111 1111", "6195018316065435", "+44 20 7946 0958", "build-42 alice@example.com",
     "token=abc123secret&page=2", "Bearer abcdefghijklmnop", "/home/alice/app.py", "[email]", "hello", "", "a",
     "2024-05-01T10:00:00Z", "'bob@example.org'", "hunter22x", "pw was hunter22x!", "abc123secret"]
) | st.text(max_size=30)  # fmt: skip
SCALARS = (
    TEXT
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson.loads gives (bigger: floats)
    | st.sampled_from([4111111111111111, 490154203237518, 10**12, -(10**12), 999_999_999_999])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)
PAYLOADS = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(KEYS, inner, max_size=6)
        | st.lists(st.lists(st.sampled_from(["Authorization", "Cookie", "X-Id"]) | TEXT, min_size=2, max_size=2))
        | st.lists(st.tuples(st.sampled_from(["Authorization", "X-Id"]), inner).map(list), min_size=1, max_size=3)
    ),
    max_leaves=40,
)


def scrubbers() -> tuple[Scrubber, Scrubber]:
    """The same rules walked in C and in Python (the fallback used when the extension isn't built)."""
    in_c = Scrubber(RULES, b"key", 5.0)
    in_python = Scrubber(RULES, b"key", 5.0)
    in_python._walk = in_python._value
    in_python._compiled = None  # and the Python compute
    in_python._walker = None  # and the search of the whole event for values found
    return in_c, in_python


def outcome(scrubber: Scrubber, payload: Any, event: bool) -> Any:
    """What scrubbing gives: the new value (and `_meta`), or the error."""
    try:
        if event:
            return scrubber.scrub_event(copy.deepcopy(payload))
        meta: dict[str, Any] = {}
        return scrubber.scrub(copy.deepcopy(payload), "", meta), meta
    except ScrubError as exc:
        return f"ScrubError: {exc}"


@pytest.mark.skipif(bool(os.environ.get("RELAY_PURE_PYTHON")), reason="RELAY_PURE_PYTHON turns the C walk off")
def test_c_walker_is_built() -> None:
    """`pip install -e .` (and so `make test`) builds the C walk, and the engine uses it."""
    assert engine.Walker is not None
    assert Scrubber(RULES)._walk.__qualname__ == "Walker.walk"


@pytest.mark.skipif(engine.Walker is None, reason="the C walk is not built")
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=PAYLOADS, event=st.booleans())
@example(payload={"headers": [["Authorization", "Bearer abcdefghijklmnop"], ["X-Id", 4111111111111111]]}, event=True)
@example(payload={"extra": {"account_no": {"type": "string", "value": "12345678"}, "ssn": 1.5}}, event=True)
@example(payload=[[["Cookie", "a"]], 4111111111111111, "alice@example.com"], event=False)
@example(
    payload={"password": "hunter22x", "note": "pw was hunter22x!", "headers": [["X-Note", "hunter22x"]],
             "debug_meta": {"x": "hunter22x"}, "values": ["hunter22x", {"apiKey": 5}]},
    event=True,
)  # fmt: skip
@example(payload={"debug_meta": {"x": "hunter22x"}, "password": "hunter22x"}, event=True)
def test_c_and_python_walks_agree(payload: Any, event: bool) -> None:
    """On any JSON payload, both walks give the same values, the same `_meta` and the same errors."""
    if event and not isinstance(payload, dict):
        payload = {"extra": payload}
    in_c, in_python = scrubbers()
    assert outcome(in_c, payload, event) == outcome(in_python, payload, event)


@pytest.mark.skipif(engine.Walker is None, reason="the C walk is not built")
def test_c_walker_bounds_depth_and_time() -> None:
    """The C walk raises the engine's own errors: too deep, and over the time bound."""
    deep: Any = "alice@example.com"
    for _ in range(200):
        deep = {"a": [deep]}
    in_c, in_python = scrubbers()
    assert (
        outcome(in_c, deep, True)
        == outcome(in_python, deep, True)
        == ("ScrubError: payload nested deeper than 128 levels")
    )
    wide = {"extra": [{"n": str(i)} for i in range(5000)]}
    slow = Scrubber(RULES, b"key", 1e-6)
    with pytest.raises(ScrubError, match="took longer"):
        slow.scrub_event(wide)
