"""India (Aadhaar, PAN), China (resident ID), Japan (My Number), Korea (RRN), Singapore (NRIC/FIN) and
Australia (TFN, Medicare). python-stdnum has no NRIC/FIN or Medicare check: they are written out here.
"""

from __future__ import annotations

from stdnum.au import tfn
from stdnum.cn import ric
from stdnum.in_ import aadhaar, pan
from stdnum.jp import in_
from stdnum.kr import rrn

from .kinds import Label, NationalId, checked, phrase, term, word

_NRIC_WEIGHTS = (2, 7, 6, 5, 4, 3, 2)
# The check letter tables and start constants of the NRIC (S, T) and FIN (F, G) series; M has its own rule.
_NRIC_SERIES = {"S": (0, "JZIHGFEDCBA"), "T": (4, "JZIHGFEDCBA"), "F": (0, "XWUTRQPNMLK"), "G": (4, "XWUTRQPNMLK")}
_NRIC_M_LETTERS = "KLJNPQRTUWX"


def nric_valid(number: str) -> bool:
    """A Singapore NRIC or FIN (S1234567D): the check letter of the weighted sum of the seven digits."""
    if len(number) != 9 or not number[1:8].isdigit():
        return False
    weighted = sum(w * int(d) for w, d in zip(_NRIC_WEIGHTS, number[1:8], strict=True))
    series, letter = number[0], number[8]
    if series == "M":  # from 2022: letter P-1 of KLJNPQRTUWX, P = 11 - (3 + sum) mod 11
        return letter == _NRIC_M_LETTERS[10 - (3 + weighted) % 11]
    if series not in _NRIC_SERIES:
        return False
    start, letters = _NRIC_SERIES[series]
    return letter == letters[(start + weighted) % 11]


_MEDICARE_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9)


def medicare_valid(number: str) -> bool:
    """An Australian Medicare card number: first digit 2-6, the 9th the weighted sum of the first 8 mod 10.

    10 digits (with the card's issue number) or 11 (and the person's reference number on the card).
    """
    if len(number) not in (10, 11) or not number.isdigit() or number[0] not in "23456":
        return False
    return sum(w * int(d) for w, d in zip(_MEDICARE_WEIGHTS, number, strict=False)) % 10 == int(number[8])


def _ric_valid(value: str) -> bool:
    number = value.replace(" ", "").upper()
    # The check digit first: python-stdnum then looks the birth place up in a table, which is slower.
    if len(number) != 18 or not number[:17].isdigit() or ric.calc_check_digit(number) != number[17]:
        return False
    return ric.is_valid(number)


# "PAN" before a colon or a qualifier (`PAN:`, `PAN no.`, `PAN card`), not before a bare space or "_":
# "span " and "span_" would wake the family in every JavaScript stack frame.
_PAN_QUALIFIED = ("no", "number", "card")
_PAN = Label(
    r"(?<![^\W_])pan(?=[:=#\"'\uff1a-]|[ _-](?:no|number|card)(?![a-z]))",
    (*(f"pan{ch}" for ch in ":=#\"'\uff1a-"), *(f"pan{sep}{q}" for sep in " _-" for q in _PAN_QUALIFIED)),
    "p",
)

FAMILY = "national_asia_pacific"
ROWS: tuple[NationalId, ...] = (
    NationalId(
        "id_in_aadhaar",
        (term("aadhaar"), term("aadhar"), term("आधार")),
        r"[2-9][0-9]{3}[ -]?[0-9]{4}[ -]?[0-9]{4}",  # 2345 6789 0123: Verhoeff-checked
        checked(aadhaar.is_valid),
    ),
    NationalId(
        "id_in_pan",
        (_PAN, phrase("permanent", "account")),
        r"[A-Z]{3}[ABCFGHJLPT][A-Z][0-9]{4}[A-Z]",  # ABCPE1234F: the 4th letter is the holder type
        checked(pan.is_valid),
    ),
    NationalId(
        "id_cn_ric",
        (term("身份证"), term("身份号码"), phrase("resident", "identity")),
        r"[0-9]{6} ?[0-9]{8} ?[0-9]{3}[0-9X]",
        _ric_valid,
        strong=r"[0-9]{17}[0-9X]",  # area, birth date, sequence, ISO 7064 check
    ),
    NationalId(
        "id_jp_my_number",
        (phrase("my", "number"), term("マイナンバー"), term("個人番号")),
        r"[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}",
        checked(in_.is_valid),
    ),
    NationalId(
        "id_kr_rrn",
        (term("주민등록번호"), term("주민번호"), word("rrn"), phrase("resident", "registration")),
        r"[0-9]{6}[ -]?[0-9]{7}",
        checked(rrn.is_valid),
        strong=r"[0-9]{6}-[0-9]{7}",  # YYMMDD-SNNNNNC
    ),
    NationalId(
        "id_sg_nric",
        (term("nric"), word("fin"), word("uin")),
        r"[STFGM][0-9]{7}[A-Z]",
        checked(nric_valid),
        strong=r"[STFGM][0-9]{7}[A-Z]",  # S1234567D
    ),
    NationalId(
        "id_au_tfn",
        (word("tfn"), phrase("tax", "file")),
        r"[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{2,3}",  # 123 456 782 (older ones have 8 digits)
        checked(tfn.is_valid),
    ),
    NationalId(
        "id_au_medicare",
        (term("medicare", r"medicare(?:[ _-]?card)?"),),
        r"[2-6][0-9]{3}[ -]?[0-9]{5}[ -]?[0-9](?:[ /-]?[1-9])?",  # 2123 45670 1, and the IRN
        checked(medicare_valid),
    ),
)
