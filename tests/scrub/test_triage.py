"""The per-string fast paths of the scrub engine find exactly what the plain, slow scan finds.

Each fast path here decides "nothing can match here" or "this answer is already known" without doing the
work; the reference implementations below are the straightforward versions they replaced (a full regex
search at every position, every validator asked every time, the generator-based checks), and Hypothesis
looks for a text where the two disagree.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.rules import Rule, load_pack
from relay.scrub import detectors, validators
from relay.scrub.engine import Scrubber, _Family, _key_values
from relay.scrub.meta import Propagator

SCRUBBER = Scrubber([*load_pack("secrets").rules, *load_pack("pii").rules], b"k", 5.0)
PLAN = SCRUBBER._child(SCRUBBER._root_plan(""), "message")
FAMILIES = {family.rules[0].detector.family: family for family in PLAN.families if family.rules[0].detector}

# Pieces of the values the detectors look for, their look-alikes, and what surrounds them.
PIECES = st.sampled_from(
    ["4111 1111 1111 1111", "4111111111111111", "6195018316065435", "992027285967892", "99-645031-051096-4",
     "378282246310005", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606",
     "078-05-1120", "415-555-0100", "+44 20 7946 0958", "(415) 555-0100", "030/1234567", "10.0.17609.843",
     "192.168.1.20", "0.0.0.0", "2001:db8::1", "fe80::1%eth0", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8",
     "7c:65:22:d8:8e:5b", "00-11-22-33-44-55", "2024-06-21 19:48:54", "2026-11-22T15:05:28.650929Z", "v1.2.3",
     "password=", "PASSWORD: ", "api_key=", "token", "Bearer ", "Basic ", "sid=", "aws_secret_access_key = ",
     "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc", "AKIAIOSFODNN7EXAMPLE", "AQSB", "ghp_" + "a" * 36, "sk-" + "b" * 24,
     "sk_live_" + "c" * 16, "xoxb-1234567890-abc", "AIza" + "d" * 35, "glpat-" + "e" * 20, "alice@example.com",
     "https://user:pw@host/", "/home/alice/x", "C:\\Users\\bob\\x", "[email]", "[Filtered]", "order=", "&", "?",
     " ", "-", ".", "/", ":", "::", "(", ")", "+", "'", '"', "=", ";", ",", "\n", "0", "1", "12", "\u0663\u0664",
     "\uff11", "\u212aey", "İ", "\u017fecret", "id", "key"]
)  # fmt: skip
TEXTS = st.lists(
    PIECES | st.text(alphabet="0123456789 -./:+()ABZaz=", max_size=8) | st.text(max_size=3), max_size=10
).map("".join)


# -- the plain implementations -----------------------------------------------------------


def plain_spans(text: str, family: _Family) -> list[tuple[int, int, Rule]]:
    """_detector_spans before its fast paths: the family's regex searched at every position."""
    spans: list[tuple[int, int, Rule]] = []
    rules = family.rules
    done = 0
    for low, high in plain_ranges(text, family):
        pos = max(low, done)
        while pos < high:
            match = family.pattern.search(text, pos, high)
            if match is None:
                break
            name = match.lastgroup or ""
            rule = rules[int(name[1:])]
            detector = rule.detector
            assert detector is not None
            if detector.validate is None or detector.validate(match.group(name)):
                group = f"{name}_secret" if detector.has_secret_group else name
                begin, finish = match.span(group)
            else:
                found = plain_alternative(text, match.start(), rules)
                if found is None:
                    pos = match.start() + 1
                    continue
                match, rule = found
                assert rule.detector is not None
                begin, finish = match.span("secret") if rule.detector.has_secret_group else match.span()
            if finish > begin:
                spans.append((begin, finish, rule))
            pos = done = max(match.end(), match.start() + 1)
    return spans


def plain_alternative(text: str, start: int, rules: Sequence[Rule]) -> tuple[re.Match[str], Rule] | None:
    for rule in rules:
        detector = rule.detector
        assert detector is not None
        own = detector.pattern.match(text, start)
        if own is None:
            continue
        if detector.validate is None or detector.validate(own.group(0)):
            return own, rule
        if detector.cut is not None and not detector.cut(own.group(0)):
            continue  # (a national phone number is not cut short)
        begin, end = own.span()
        for cut in range(end - 1, begin, -1):
            if text[cut] in " -./":
                shorter = detector.pattern.fullmatch(text, begin, cut)
                if shorter is not None and detector.validate(shorter.group(0)):
                    return shorter, rule
    return None


def plain_ranges(text: str, family: _Family) -> list[tuple[int, int]]:
    if family.windows is None:
        return [(0, len(text))]
    runs, before, after, _ = family.windows
    ranges: list[tuple[int, int]] = []
    for run in runs.finditer(text):
        if not plain_worth(text, run.start(), run.end()):
            continue
        low, high = max(0, run.start() - before), min(len(text), run.end() + after)
        if ranges and low <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(high, ranges[-1][1]))
        else:
            ranges.append((low, high))
    return ranges


def plain_worth(text: str, start: int, end: int) -> bool:
    run = text[start:end]
    digits = len(run) - run.count(" ") - run.count(".") - run.count("-") - run.count("/") - run.count("(")
    digits -= run.count(")")
    if digits >= 12:
        return True
    if (start and text[start - 1] in "+(") or run[0] == "0" or digits in (9, 10, 11):
        return True
    if run.count(".") == 3:
        return True
    return start >= 2 and text[start - 2 : start].isupper()


def plain_digits(text: str) -> str:
    return "".join(str(int(ch)) for ch in text if ch.isdecimal())


def plain_luhn(number: str) -> bool:
    # The textbook form (digit sums of the doubled digits), not the validators' own arithmetic.
    doubled = (sum(divmod(2 * int(ch), 10)) if index % 2 else int(ch) for index, ch in enumerate(reversed(number)))
    return sum(doubled) % 10 == 0


def plain_credit_card(text: str) -> bool:
    number = plain_digits(text)
    if not 13 <= len(number) <= 19 or len(set(number)) == 1:
        return False
    groups = tuple(len(g) for g in text.replace("-", " ").split())
    if len(groups) > 1 and groups not in validators._CARD_GROUPINGS:
        return False
    two, four = int(number[:2]), int(number[:4])
    issuer = (
        number[0] == "4" or 51 <= two <= 55 or 2221 <= four <= 2720 or two in (34, 37) or two in (36, 38, 39)
        or 300 <= int(number[:3]) <= 305 or number.startswith(("6011", "65")) or 644 <= int(number[:3]) <= 649
        or 3528 <= four <= 3589 or number.startswith(("62", "81")) or number.startswith(("50", "56", "57", "58", "6"))
        or 2200 <= four <= 2205 or number.startswith(("82", "3841", "8600", "9792", "9860"))
        or (len(number) == 15 and number.startswith(("1800", "2131")))
    )  # fmt: skip
    if len(number) == 15 and not (two in (34, 37) or number.startswith(("50", "56", "57", "58", "6", "1800", "2131"))):
        return False
    if len(number) == 13 and number[0] != "4":
        return False
    return issuer and plain_luhn(number)


def plain_iban(text: str) -> bool:
    iban = "".join(text.split()).upper()
    if validators.IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1
    except ValueError:
        return False


def plain_ipv6(text: str) -> bool:
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    if address.is_unspecified or address.is_loopback:
        return False
    return len([g for g in text.split(":") if g]) >= 3 and any(ch.isdigit() for ch in text)


def plain_words_trigger(text: str) -> bool:
    lower = text.lower()
    return any(word in lower for word in detectors._SECRET_WORDS_LOWER)


def plain_hexsep_trigger(text: str) -> bool:
    return bool(
        (("::" in text or text.count(":") >= 3) and re.search(r"::|(?:[0-9A-Fa-f]{1,4}:){3}", text))
        or (text.count("-") >= 5 and re.search(r"(?:[0-9A-Fa-f]{2}-){5}", text))
        or re.search(r"[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}", text)  # Cisco's a446.15f0.a6cc
    )


PLAIN_KEY_VALUE = re.compile(r"(?:^|(?<=[?&;,\s]))([A-Za-z][\w.\[\]-]{0,63})=([^&#\s;,'\"]+)")


# -- the tests ---------------------------------------------------------------------------


def spans_of(found: list[tuple[int, int, Rule]]) -> list[tuple[int, int, str]]:
    return [(begin, end, rule.id) for begin, end, rule in found]


@settings(max_examples=2500, deadline=None)
@given(text=TEXTS)
@example(text="refund for order 6195018316065435 pending")
@example(text="6195018316065435")
@example(text="ref 4111 1111 1111 1111 2024")
@example(text="'10.0.17609.843'")
@example(text="7c:65:22:d8:8e:5b")
@example(text="id DE89 3704 0044 0532 0130 00.")
@example(text="\u0663\u0664\u0665-\u0666\u0667-\u0668\u0669\u0660\u0661")
def test_each_family_finds_what_a_full_scan_finds(text: str) -> None:
    """Scanning only where a match can begin, and not re-asking a validator, changes no span."""
    for family in FAMILIES.values():
        assert spans_of(SCRUBBER._detector_spans(text, family)) == spans_of(plain_spans(text, family)), family


@example(text="4111 1111 1111 1111.0000.0000")
@settings(max_examples=2000, deadline=None)
@given(text=TEXTS)
def test_triggers_fire_as_before(text: str) -> None:
    """The regex forms of the words and hex-separator triggers answer like the plain checks."""
    assert detectors.TRIGGERS["words"](text) == plain_words_trigger(text)
    assert detectors.TRIGGERS["hexsep"](text) == plain_hexsep_trigger(text)


NUMBERS = st.text(alphabet="0123456789", min_size=1, max_size=20) | st.text(
    alphabet="0123456789 -./\u0663", min_size=1, max_size=24
)


@settings(max_examples=3000, deadline=None)
@given(text=NUMBERS)
@example(text="4111111111111111")
@example(text="4111 1111 1111 1111")
@example(text="378282246310005")
def test_number_validators_answer_as_before(text: str) -> None:
    """The C-level digit, Luhn and card checks give the generator versions' answers."""
    assert validators.digits_of(text) == plain_digits(text)
    assert validators.luhn_valid(plain_digits(text)) == plain_luhn(plain_digits(text))
    assert validators.credit_card_valid(text) == plain_credit_card(text)
    assert validators.imei_valid(text) == (
        len(plain_digits(text)) == 15
        and plain_digits(text)[:2] in validators._IMEI_REPORTING_BODIES
        and len(set(plain_digits(text))) > 2
        and plain_luhn(plain_digits(text))
    )


@settings(max_examples=2000, deadline=None)
@given(
    country=st.sampled_from(["DE", "GB", "FR", "NO", "XX", "de"]),
    body=st.text(alphabet="0123456789ABCDEFXYZ abß\u0663-", max_size=30),
)
@example(country="DE", body="89370400440532013000")
@example(country="GB", body="82WEST12345698765432")
def test_iban_validator_answers_as_before(country: str, body: str) -> None:
    assert validators.iban_valid(country + body) == plain_iban(country + body)


@settings(max_examples=3000, deadline=None)
@given(text=st.text(alphabet="0123456789abcdefABCDEF:.%zg", max_size=40))
@example(text="7c:65:22:d8:8e:5b")
@example(text="fe80::1%eth0")
@example(text="1:2:3:4:5:6:1.2.3.4")
def test_ipv6_validator_answers_as_before(text: str) -> None:
    assert validators.ipv6_valid(text) == plain_ipv6(text)


@settings(max_examples=3000, deadline=None)
@given(text=st.text(alphabet="0123456789 .()/-+ABZaz\u0663", min_size=1, max_size=30))
def test_numeric_windows_open_where_they_did(text: str) -> None:
    for run in detectors._NUMERIC_RUN.finditer(text):
        assert detectors._numeric_run_worth_scanning(text, *run.span()) == plain_worth(text, *run.span())


def pairs(matches: Sequence[re.Match[str]]) -> list[tuple[Any, ...]]:
    return [(m.span(1), m.span(2), m.group(1), m.group(2)) for m in matches]


@settings(max_examples=3000, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["a", "Key", "x.y", "[0]", "=", "v", "&", "?", ";", ",", " ", "\t", "#", "'", "é", "_"]),
        max_size=16,
    ).map("".join)
)
@example(text="a=b?c=d&e=f")
@example(text="a=b=c d=e")
def test_key_value_pairs_are_found_as_before(text: str) -> None:
    """Consuming the separator before a key (instead of looking behind for it) finds the same pairs."""
    assert pairs(_key_values(text)) == pairs(list(PLAIN_KEY_VALUE.finditer(text)))


PLAIN_PEM = re.compile(r"-----BEGIN[A-Z ]{0,30} PRIVATE KEY-----[\s\S]*?(?:-----END[A-Z ]{0,30} PRIVATE KEY-----|$)")
PEM_PIECES = ["-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----", "-----END PRIVATE KEY----", "\n", "-"]


@settings(max_examples=2000, deadline=None)
@given(
    text=st.lists(st.sampled_from([*PEM_PIECES, "--", "MIIE+/=", "-----END  PRIVATE KEY-----", "x\n"]), max_size=8).map(
        "".join
    ),
    cut=st.integers(0, 3),
)
def test_pem_keys_end_where_they_did(text: str, cut: int) -> None:
    """The possessive PEM body loop stops exactly where the lazy `[\\s\\S]*?` stopped, at any start and end."""
    pattern = detectors.DETECTORS["pem_private_key"].pattern
    end = max(0, len(text) - cut)
    for start in range(end + 1):
        new, old = pattern.match(text, start, end), PLAIN_PEM.match(text, start, end)
        assert (new and new.span()) == (old and old.span())


@settings(max_examples=1000, deadline=None)
@given(
    values=st.lists(st.sampled_from(["abc123", "abc1234", "c123ab", "123abc", "zzzzzz", "bc123a"]), min_size=1),
    text=st.lists(st.sampled_from(["abc123", "4", "c123ab", "bc", " ", "zz", "a"]), max_size=12).map("".join),
)
def test_propagator_replaces_as_the_longest_first_alternation_did(values: list[str], text: str) -> None:
    """Leftmost, then longest, non-overlapping: what a regex alternation of the values, longest first, finds."""
    found = {value: (f"[{value[:2]}]", "r", "s") for value in values}
    meta: dict[str, Any] = {}
    new = Propagator(Scrubber([]), found, meta).walk(text, Scrubber([])._root, [])
    pattern = re.compile("|".join(re.escape(v) for v in sorted(found, key=len, reverse=True)))
    assert new == pattern.sub(lambda m: found[m.group(0)][0], text)
