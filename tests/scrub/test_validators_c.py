"""The C digit validators (`_validators.c`) give exactly what the Python validators give, on any text."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.scrub import detectors, engine, validators

pytestmark = pytest.mark.skipif(engine.Walker is None, reason="the C parts are not built")

PYTHON: dict[str, Callable[[str], bool]] = {
    "credit_card_valid": validators.credit_card_valid,
    "iban_valid": validators.iban_valid,
    "ssn_valid": validators.ssn_valid,
    "imei_valid": validators.imei_valid,
    "phone_valid": validators.phone_valid,
    "ipv4_public_or_private": validators.ipv4_public_or_private,
}
DIGITS = st.text("0123456789", min_size=1, max_size=20)
PIECES = st.sampled_from(
    [" ", "-", ".", "+", "(", ")", "\t", "\x1f", "0", "00", "1", "4", "5", "6", "9", "34", "37", "62", "255", "256",
     "GB", "DE", "gb", "NL", "XX", "a", "/", "٣", "\u00a0", "4111", "1111", "6011", "3528", "490154203237518"]
) | DIGITS  # fmt: skip
TEXTS = st.lists(PIECES, max_size=12).map("".join)
REAL = st.sampled_from(
    ["4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005", "6195018316065435", "5555555555554444",
     "GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432", "DE89 3704 0044 0532 0130 00", "078-05-1120",
     "666-12-3456", "490154203237518", "+44 20 7946 0958", "(415) 555-0100", "415-555-0100", "020 7946 0958",
     " +1 212 555 0123", "10.0.0.1", "0.0.0.0", "255.255.255.255", "01.2.3.4", "1.2.3.4.", "256.1.1.1"]
)  # fmt: skip


def luhn_completed(digits: str) -> str:
    """`digits` plus the check digit that makes it pass Luhn."""
    for last in "0123456789":
        if validators.luhn_valid(digits + last):
            return digits + last
    raise AssertionError("unreachable")


def iban_completed(country: str, bban: str) -> str:
    """An IBAN with correct check digits for this country and account part."""
    check = 98 - int((bban + country + "00").translate(validators._IBAN_DIGITS)) % 97
    return f"{country}{check:02d}{bban}"


def grouped(digits: str, sizes: list[int], separator: str) -> str:
    """`digits` written in groups of these sizes (the rest as one last group)."""
    parts, at = [], 0
    for size in sizes:
        if at < len(digits):
            parts.append(digits[at : at + size])
            at += size
    if at < len(digits):
        parts.append(digits[at:])
    return separator.join(parts)


CARDS = st.builds(
    grouped,
    st.builds(luhn_completed, st.text("0123456789", min_size=12, max_size=18)),
    st.sampled_from([[], [4, 4, 4, 4], [4, 6, 5], [4, 6, 4], [4, 4, 5], [4, 4, 4, 4, 3], [3, 3]]),
    st.sampled_from([" ", "-", "  "]),
)
IBANS = st.builds(
    iban_completed,
    st.sampled_from(sorted(validators.IBAN_LENGTHS)),
    st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=10, max_size=30),
).map(lambda iban: grouped(iban, [4] * 8, " "))
PHONES = st.builds(
    lambda fmt, digits: fmt.format(*digits),
    st.sampled_from(["({}{}{}) {}{}{}-{}{}{}{}", "{}{}{}-{}{}{}-{}{}{}{}", "+1 {}{}{} {}{}{} {}{}{}{}",
                     "+{}{} {}{}{}{} {}{}{}{}", "0{}{} {}{}{}{} {}{}{}{}", "+{}{}{} {}{} {}{}{} {}{}"]),
    st.lists(st.sampled_from("0123456789"), min_size=10, max_size=10),
)  # fmt: skip
IPS = st.builds(
    lambda parts, zero: ".".join(("0" if zero and i == 0 else "") + str(p) for i, p in enumerate(parts)),
    st.lists(st.integers(0, 300), min_size=3, max_size=5),
    st.booleans(),
)
SHAPED = CARDS | IBANS | PHONES | IPS | st.builds(luhn_completed, st.text("0123456789", min_size=14, max_size=14))


@settings(max_examples=4000, deadline=None)
@given(text=TEXTS | REAL | SHAPED, name=st.sampled_from(sorted(PYTHON)))
@example(text="4111 1111 1111 1111 2024", name="credit_card_valid")
@example(text="٤١١١١١١١١١١١١١١١", name="credit_card_valid")
@example(text="gb82 west 1234 5698 7654 32", name="iban_valid")
def test_c_validators_agree_with_python(text: str, name: str) -> None:
    """On any text (ASCII or not), the C validator and the Python one give the same verdict."""
    compiled = validators.compiled()
    assert compiled[name](text) is PYTHON[name](text)


def test_detectors_use_the_c_validators() -> None:
    """Where the C parts are built, the numeric detectors validate with them."""
    compiled = validators.compiled()
    assert detectors.DETECTORS["credit_card"].validate is compiled["credit_card_valid"]
    assert detectors.DETECTORS["phone"].validate.__closure__[0].cell_contents is compiled["phone_valid"]  # type: ignore[union-attr,index]
