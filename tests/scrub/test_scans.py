"""The C scans (`_scans.c`) find what the detectors' STARTS and WINDOWS regexes find, on any text."""

from __future__ import annotations

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from relay.rules import parse_pack
from relay.scrub import detectors, engine
from relay.scrub.engine import Scrubber

pytestmark = pytest.mark.skipif(engine.Walker is None, reason="the C walk is not built")

if engine.Walker is not None:
    from relay.scrub import _walker

# Characters around which the scans decide things, and some that look alike (other scripts' digits,
# Kelvin sign, title case, an ASCII look-alike).
ALPHABET = st.sampled_from(
    [*"0123456789+()[]-./ :=_'\"AZaz", "٣", "٤", "K", "ǅ", "İ", "é", "\n",
       "pass", "PWD", "Private", "secret", "sess", "sid", "sig", "client", "csrf", "cred", "token", "access",
       "auth", "api", "aws", "refresh", "id", "xsrf", "x-amz", "key", "bearer", "basic", "digest", "negotiate",
       "-----BEGIN", "eyJ", "AKIA", "ASIA", "AIza", "ghp_", "gho", "github_pat_", "glpat-", "glabcdef-", "glx-",
       "xox", "https://hooks", "sk_", "sk-", "rk_", "whsec_", "ya29.", "GOCSPX-", "GB", "DE", "4111"]
)  # fmt: skip
TEXTS = st.lists(ALPHABET, max_size=40).map("".join)


def regex_start(family: str, text: str, pos: int, high: int) -> int:
    """Where STARTS[family] finds the next candidate (on the lowered text where it says so), or -1."""
    pattern, lowered = detectors.STARTS[family]
    found = pattern.search(text.lower() if lowered else text, pos, high)
    return -1 if found is None else found.start()


@settings(max_examples=1500, deadline=None)
@given(text=TEXTS, family=st.sampled_from(["numeric", "words", "token"]), data=st.data())
@example(text="ab12 (415) 555-0100", family="numeric", data=None)
@example(text="glabcde-x glab-", family="token", data=None)
def test_next_start_agrees_with_the_starts_regex(text: str, family: str, data: st.DataObject | None) -> None:
    """From any position and up to any end, the C scan and the regex give the same next candidate."""
    if family == "words" and not text.isascii():
        return  # the engine scans non-ASCII text in full (lowering could move positions)
    bounds = [(0, len(text)), (1, len(text) - 2), (3, len(text))]
    if data is not None:
        pos = data.draw(st.integers(0, len(text)))
        bounds.append((pos, data.draw(st.integers(pos, len(text)))))
    bit = detectors.FAMILY_BITS[family]
    for pos, high in bounds:
        if 0 <= pos <= high:
            assert _walker.next_start(bit, text, pos, high) == regex_start(family, text, pos, high)


@settings(max_examples=1500, deadline=None)
@given(text=TEXTS)
@example(text="v1.2.3.4 and 2024-05-01, 12 34 56 7")
@example(text="GB82 1234 5678 ٣٣٣٣")
def test_numeric_windows_agree_with_the_runs_regex(text: str) -> None:
    """Every numeric run, and whether it is worth scanning, as _NUMERIC_RUN and its filter say."""
    runs, _, _, worth = detectors.WINDOWS["numeric"]
    expected = [(m.start(), m.end(), worth(text, m.start(), m.end())) for m in runs.finditer(text)]
    found = []
    pos = 0
    while (run := _walker.next_run(text, pos)) is not None:
        start, end = run
        found.append((start, end, _walker.worth_scanning(text, start, end)))
        pos = end
    assert found == expected


JSON = st.recursive(
    st.none() | st.integers() | TEXTS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXTS, inner, max_size=4),
    max_leaves=20,
)


def values_of(value: object) -> list[str]:
    """Every string value of a JSON value, list items included (what the Propagator looks into; not keys)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in values_of(item)]
    if isinstance(value, list):
        return [s for item in value for s in values_of(item)]
    return []


# A rule on every string that never matches: no plan is skipped, and no string changes.
NOTHING = parse_pack(
    """rules:
  - id: t.nothing
    description: matches no text the tests make
    pattern: '\\x00never\\x00'
    action: replace
""",
    "nothing.yml",
).rules


@settings(max_examples=1000, deadline=None)
@given(payload=JSON, found=st.lists(TEXTS.filter(lambda text: len(text) >= 6), max_size=4))
@example(payload={"a": ["x", "pass4111 ok"]}, found=["4111 o"])
@example(payload={"key٣٣٣٣٣٣": ["y٣٣٣٣٣٣٣"]}, found=["y٣٣٣٣٣"])
@example(payload={"key٣٣٣٣٣٣": 1}, found=["key٣٣٣"])
@example(payload=["abcdef", "cdefgh"], found=["def\x00cd"])
def test_the_walk_gathers_the_strings_a_value_could_still_be_in(payload: object, found: list[str]) -> None:
    """After a walk, seen() says whether a value is inside a string it left: never in a key, never across two."""
    scrubber = Scrubber(NOTHING)
    assert scrubber._walker is not None
    scrubber._walker.gather(True)
    scrubber.scrub(payload, "", None)
    answer = scrubber._walker.seen(dict.fromkeys(found))
    assume(answer is not None)  # a header pair list holding a container: the whole-event search decides
    expected = any(value in text for value in found for text in values_of(payload))
    assert answer == expected or (answer and any("\x00" in value for value in found))


@settings(max_examples=1500, deadline=None)
@given(text=TEXTS, family=st.sampled_from(["words", "token"]))
@example(text="xaws_secret_key=" + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", family="words")
@example(text="aeyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig task_sk_live_0123456789abcdef", family="token")
def test_candidates_ruled_out_by_what_precedes_them_cannot_match(text: str, family: str) -> None:
    """Where may_begin says no, the family's combined regex doesn't match, whatever the end of the scan."""
    if family == "words" and not text.isascii():
        return
    pattern = detectors.combine([d for d in detectors.DETECTORS.values() if d.family == family])
    bit = detectors.FAMILY_BITS[family]
    for at in range(len(text)):
        if regex_start(family, text, at, len(text)) == at and not _walker.may_begin(bit, text, at):
            assert all(pattern.match(text, at, end) is None for end in (len(text), at + 8, at + 30))
