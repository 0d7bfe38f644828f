"""The C compute (`_compute.c`) gives exactly what `Scrubber._compute_python` gives for any string and plan."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relay.rules import Rule, load_pack, parse_pack
from relay.scrub import engine
from relay.scrub.engine import Scrubber, _Result

pytestmark = pytest.mark.skipif(engine.Walker is None, reason="the C walk is not built")

# Every action the C compute treats its own way: replace, remove (whole value, or a pair's value), and the
# ones it hands to `_apply` (mask, hash), on detectors and on key names inside key=value text.
EXTRA: list[Rule] = parse_pack(
    """rules:
  - id: t.mask_card
    description: cards in notes are masked
    selectors: [note]
    detector: credit_card
    action: mask
    keep_last: 4
  - id: t.hash_email
    description: emails in notes are hashed
    selectors: [note]
    detector: email
    action: hash
  - id: t.remove_phone
    description: a detail with a phone number goes
    selectors: [detail]
    detector: phone
    action: remove
  - id: t.drop_pin
    description: pin=... loses its value
    keys: [pin]
    action: remove
  - id: t.mask_account
    description: account=... is masked
    keys: ['account.*']
    action: mask
    keep_last: 2
""",
    "compute.yml",
).rules
RULES: list[Rule] = [*EXTRA, *load_pack("secrets").rules, *load_pack("pii").rules]
SHAPES = [
    "message", "note", "detail", "exception.values.#.value", "request.headers.Cookie", "breadcrumbs.values.#.data.url"
]  # fmt: skip

FRAGMENTS = st.sampled_from(
    ["alice@example.com", "'bob@example.org'", "4111 1111 1111 1111", "4111111111111111", "6195018316065435",
     "4111 1111 1111 1111 2024", "+44 20 7946 0958", "(415) 555-0100", "415-555-0100", "020 7946 0958",
     "078-05-1120", "GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "10.0.0.1", "192.168.1.254",
     "fe80::1ff:fe23:4567:890a", "::1", "00:1A:2B:3C:4D:5E", "01-23-45-67-89-ab", "490154203237518",
     "/home/alice/app.py", "C:\\Users\\bob\\x", "Bearer abcdefghijklmnop", "postgres://app:pw@db/x",
     "password=hunter22", "token=abc123secret&page=2", "pin=1234", "account=12345678", "key=%s", "x={name}",
     "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----", "eyJhbGciOi.eyJzdWIiOi.sig",
     "AKIAIOSFODNN7EXAMPLE", "ghp_" + "a" * 36, "sk-proj-" + "b" * 24, "[email]", "[Filtered]",
     "[hash:0123456789abcdef0123456789abcdef]", "2024-05-01T10:00:00Z", "v1.2.3", "٤١١١١١١١١١١١١١١١", "ALICE",
     " ", ", ", "?", "&", "=", ":", "-", ".", "(", ")", "\n", "'", '"', "0", "7", "A", "é", "🙂"]
)  # fmt: skip
TEXTS = st.lists(FRAGMENTS | st.text(max_size=12), max_size=8).map("".join)


def scrubber() -> Scrubber:
    """A scrubber with C parts: its `_compiled` is the C compute."""
    return Scrubber(RULES, b"key", 5.0)


def as_tuple(result: _Result) -> object:
    """What a result says, comparable (the unchanged marker as None)."""
    return None if result is engine._UNCHANGED else (result.value, result.remarks, result.found)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, shape=st.sampled_from(SHAPES))
@example(text="pin=1234 and card 4111111111111111", shape="message")
@example(text="call +44 20 7946 0958 now", shape="detail")
@example(text="mail 'bob@example.org' card 4111 1111 1111 1111", shape="note")
@example(text="[email] alice@example.com [hash:0123456789abcdef0123456789abcdef]", shape="message")
def test_c_and_python_compute_agree(text: str, shape: str) -> None:
    """For any string at any of these plans, both computes give the same value, remarks and found values."""
    scrub = scrubber()
    plan = scrub._root_plan(shape)
    assert plan.spec is not None and scrub._compiled is not None
    assert as_tuple(scrub._compiled(text, plan)) == as_tuple(scrub._compute_python(text, plan))


def test_plans_with_user_patterns_or_allowlists_use_python() -> None:
    """A plan with a user regex or an allowlist has no spec: its strings go to the Python compute."""
    rules = parse_pack(
        """rules:
  - id: t.order
    description: order numbers
    pattern: 'ORD-\\d+'
    action: replace
  - id: t.keep_test
    description: test addresses stay
    selectors: [extra]
    detector: email
    action: keep
""",
        "user.yml",
    ).rules
    scrub = Scrubber([*rules, *load_pack("pii").rules])
    assert scrub._root_plan("message").spec is None
    assert scrub._compute("ORD-12 alice@example.com", scrub._root_plan("message")).value == "[Filtered] [email]"
    with pytest.raises(ValueError, match="Python compute"):
        scrub._compiled and scrub._compiled("x", scrub._root_plan("message"))


@pytest.mark.skipif(bool(os.environ.get("RELAY_PURE_PYTHON")), reason="RELAY_PURE_PYTHON turns the C parts off")
def test_default_packs_compute_in_c() -> None:
    """With the default packs, every plan's new strings are computed in C."""
    scrub = Scrubber([*load_pack("secrets").rules, *load_pack("pii").rules])
    assert all(scrub._root_plan(shape).spec is not None for shape in SHAPES)
