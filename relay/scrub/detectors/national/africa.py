"""South Africa (ID number): YYMMDD, four sequence digits, citizenship, a digit, and a Luhn check."""

from __future__ import annotations

from stdnum.za import idnr

from .kinds import NationalId, checked, phrase

_valid = checked(idnr.is_valid)


def _unlabelled_valid(value: str) -> bool:
    # 13 bare digits beginning 14-19 are as likely a millisecond timestamp (May 2014 to 2033) as the ID of
    # someone born 1914-1919 or 2014-2019: those need a label.
    return not (len(value) == 13 and value[0] == "1" and value[1] in "456789") and _valid(value)


FAMILY = "national_africa"
ROWS: tuple[NationalId, ...] = (
    NationalId(
        "id_za_idnr",
        (phrase(("id", "identity"), "number"), phrase(("rsa", "sa"), "id", joined=False)),
        r"[0-9]{6}[ -]?[0-9]{4}[ -]?[0-9]{2}[ -]?[0-9]",
        _valid,
        strong=r"[0-9]{13}|[0-9]{6} [0-9]{4} [0-9]{2} ?[0-9]",  # 8001015009087, 800101 5009 08 7
        strong_check=_unlabelled_valid,
    ),
)
