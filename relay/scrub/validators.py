"""Checksums and plausibility checks that separate real personal data from look-alikes."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable

# IBAN length by country (ISO 13616 registry).
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18,
    "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33,
    "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# ITU-T E.164 country calling codes (1-3 digits), enough to reject "+" numbers that can't be phones.
_COUNTRY_CODES = frozenset(
    {
        "1",
        "7",
        "20",
        "27",
        "30",
        "31",
        "32",
        "33",
        "34",
        "36",
        "39",
        "40",
        "41",
        "43",
        "44",
        "45",
        "46",
        "47",
        "48",
        "49",
        "51",
        "52",
        "53",
        "54",
        "55",
        "56",
        "57",
        "58",
        "60",
        "61",
        "62",
        "63",
        "64",
        "65",
        "66",
        "81",
        "82",
        "84",
        "86",
        "90",
        "91",
        "92",
        "93",
        "94",
        "95",
        "98",
        "211",
        "212",
        "213",
        "216",
        "218",
        "220",
        "221",
        "222",
        "223",
        "224",
        "225",
        "226",
        "227",
        "228",
        "229",
        "230",
        "231",
        "232",
        "233",
        "234",
        "235",
        "236",
        "237",
        "238",
        "239",
        "240",
        "241",
        "242",
        "243",
        "244",
        "245",
        "246",
        "248",
        "249",
        "250",
        "251",
        "252",
        "253",
        "254",
        "255",
        "256",
        "257",
        "258",
        "260",
        "261",
        "262",
        "263",
        "264",
        "265",
        "266",
        "267",
        "268",
        "269",
        "290",
        "291",
        "297",
        "298",
        "299",
        "350",
        "351",
        "352",
        "353",
        "354",
        "355",
        "356",
        "357",
        "358",
        "359",
        "370",
        "371",
        "372",
        "373",
        "374",
        "375",
        "376",
        "377",
        "378",
        "380",
        "381",
        "382",
        "383",
        "385",
        "386",
        "387",
        "389",
        "420",
        "421",
        "423",
        "500",
        "501",
        "502",
        "503",
        "504",
        "505",
        "506",
        "507",
        "508",
        "509",
        "590",
        "591",
        "592",
        "593",
        "594",
        "595",
        "596",
        "597",
        "598",
        "599",
        "670",
        "672",
        "673",
        "674",
        "675",
        "676",
        "677",
        "678",
        "679",
        "680",
        "681",
        "682",
        "683",
        "685",
        "686",
        "687",
        "688",
        "689",
        "690",
        "691",
        "692",
        "850",
        "852",
        "853",
        "855",
        "856",
        "880",
        "886",
        "960",
        "961",
        "962",
        "963",
        "964",
        "965",
        "966",
        "967",
        "968",
        "970",
        "971",
        "972",
        "973",
        "974",
        "975",
        "976",
        "977",
        "992",
        "993",
        "994",
        "995",
        "996",
        "998",
    }
)


# For ASCII text, `str.translate` drops everything but the digits in one C call.
_ASCII_NON_DIGITS = {code: None for code in range(128) if not chr(code).isdigit()}


def digits_of(text: str) -> str:
    """Only the digits of a string, as ASCII digits: like the regexes' \\d, any script's decimal digits count."""
    if text.isascii():
        return text if text.isdigit() else text.translate(_ASCII_NON_DIGITS)
    return "".join(str(int(ch)) for ch in text if ch.isdecimal())


# Luhn's doubled digits (2d, minus 9 when above 9) by the byte of the ASCII digit d.
_LUHN_DOUBLED = bytes.maketrans(b"0123456789", bytes(d * 2 - 9 if d > 4 else d * 2 for d in range(10)))


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) checksum used by payment cards and IMEIs."""
    if number.isascii() and number.isdigit():  # summed in C: digits from the right, every second doubled
        raw = number.encode()
        kept = raw[-1::-2]
        return (sum(kept) - 48 * len(kept) + sum(raw[-2::-2].translate(_LUHN_DOUBLED))) % 10 == 0
    total = 0
    for index, ch in enumerate(reversed(number)):
        digit = int(ch)  # a decimal digit of any script (the regexes' \d): "٣" is 3
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


# How card numbers are grouped when written with separators (Visa/MC/Discover, Amex, Diners).
_CARD_GROUPINGS = {
    (4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 4, 4, 4, 2), (4, 4, 4, 4, 1), (4, 6, 5), (4, 6, 4), (4, 4, 5), (4, 4, 4),
}  # fmt: skip
_TWELVE_DIGIT_IINS = ("5018", "5020", "5038", "5893", "6304", "6390", "6759", "6761", "6762", "6763")


def credit_card_valid(text: str) -> bool:
    """12-19 digits, grouped as cards are printed, a known issuer prefix, and a valid Luhn checksum."""
    number = digits_of(text)
    if not 12 <= len(number) <= 19 or len(set(number)) == 1:
        return False
    if number is not text:  # written with separators (a bare run of digits is one group)
        groups = tuple(len(g) for g in text.replace("-", " ").split())
        if len(groups) > 1 and groups not in _CARD_GROUPINGS:
            return False
    if not luhn_valid(number):
        return False  # the cheap decisive test first: nine in ten digit runs fail it (all tests are pure)
    two, four = int(number[:2]), int(number[:4])
    issuer = (
        number[0] == "4"  # Visa
        or 51 <= two <= 55
        or 2221 <= four <= 2720  # Mastercard
        or two in (34, 37)  # Amex
        or two in (36, 38, 39) or 300 <= int(number[:3]) <= 305  # Diners
        or number.startswith(("6011", "65")) or 644 <= int(number[:3]) <= 649  # Discover
        or two == 35  # JCB (3528-3589 issued; test generators such as Faker's use all of 35)
        or number.startswith(("62", "81"))  # UnionPay
        or number.startswith(("50", "56", "57", "58", "6"))  # Maestro
        or 2200 <= four <= 2205  # Mir, Borica
        or number.startswith(("82", "3841", "8600", "9792", "9860"))  # RuPay, Hipercard, Uzcard, Troy, Humo
        or (len(number) == 15 and number.startswith(("1800", "2131")))  # JCB's 15-digit numbers
    )  # fmt: skip
    if len(number) == 15 and not (two in (34, 37) or number.startswith(("50", "56", "57", "58", "6", "1800", "2131"))):
        return False  # only Amex and Maestro issue 15 digits: the rest is an IMEI's length
    if len(number) == 13 and number[0] != "4":
        return False  # only Visa issued 13 digits: the rest is an EAN-13's length
    if len(number) == 12:
        return number.startswith(_TWELVE_DIGIT_IINS)  # only Maestro issues 12 digits, from these ranges
    return issuer


# An IBAN's characters as the numbers mod-97 works on: digits stay, A-Z become 10-35 (uppercase only: the
# IBAN is uppercased first).
_IBAN_DIGITS = str.maketrans({chr(code): str(int(chr(code), 36)) for code in range(48, 91) if chr(code).isalnum()})


def iban_valid(text: str) -> bool:
    """Country length and the ISO 7064 mod-97 checksum."""
    iban = "".join(text.split()).upper()
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    if rearranged.isascii() and rearranged.isalnum():  # the usual case: letters become 10..35 in one C call
        return int(rearranged.translate(_IBAN_DIGITS)) % 97 == 1
    try:
        return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1
    except ValueError:
        return False


def ssn_valid(text: str) -> bool:
    """US SSN: area not 000, 666 or 9xx; group not 00; serial not 0000."""
    number = digits_of(text)
    if len(number) != 9:
        return False
    area, group, serial = number[:3], number[3:5], number[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# GSMA reporting body identifiers: the first two digits of every allocated IMEI.
_IMEI_REPORTING_BODIES = frozenset(
    {"00", "01", "10", "30", "33", "35", "44", "45", "49", "50", "51", "52", "53", "54", "86", "91", "98", "99"}
)


def imei_valid(text: str) -> bool:
    """15 digits, a real reporting-body prefix, and a valid Luhn check digit (thread ids and the like fail)."""
    number = digits_of(text)
    return len(number) == 15 and number[:2] in _IMEI_REPORTING_BODIES and len(set(number)) > 2 and luhn_valid(number)


def phone_valid(text: str) -> bool:
    """A plausible phone number: E.164 digit counts, a real country code, NANP rules for +1."""
    number = digits_of(text)
    stripped = text.strip()
    if len(set(number)) <= 2:
        return False
    if stripped.startswith("+"):
        if not 8 <= len(number) <= 15:
            return False
        if not any(number[:n] in _COUNTRY_CODES for n in (1, 2, 3)):
            return False
        if number[0] == "1":
            return len(number) == 11 and _nanp_valid(number[1:])
        return True
    if stripped.startswith("("):  # (415) 555-0100
        return len(number) == 10 and _nanp_valid(number)
    if number.startswith("0"):  # national trunk prefix, common in Europe
        return 9 <= len(number) <= 12 and number[1] != "0"
    return len(number) == 10 and _nanp_valid(number)


def _nanp_valid(number: str) -> bool:
    """North American numbering: area and exchange codes start with 2-9, area is not N11."""
    return len(number) == 10 and number[0] >= "2" and number[3] >= "2" and number[1:3] != "11"


def mac_valid(text: str) -> bool:
    """A MAC address other than all zeros or all ones; Cisco's dotted form needs a hex letter (else a build number)."""
    if "." in text and not any(ch in "abcdefABCDEF" for ch in text):
        return False
    digits = text.replace(":", "").replace("-", "").replace(".", "").strip("0")
    return digits.lower() not in ("", "ffffffffffff")


def ipv4_public_or_private(text: str) -> bool:
    """A syntactically valid IPv4 address a host can have: not N.0.0.0 (0.0.0.0, a /8 network, and the version
    in a browser's user agent: Chrome/120.0.0.0, Edg/, OPR/) and not 255.255.255.255."""
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return address.packed[1:] != b"\0\0\0" and text != "255.255.255.255"


def ipv6_valid(text: str) -> bool:
    """A real IPv6 address with enough groups to be one (not `::`, `::1` or `a::b` from code)."""
    if "::" not in text and text.count(":") != 7 and "." not in text and "%" not in text:
        return False  # without "::", an embedded IPv4 or a scope, an address has eight groups (a MAC has six)
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    if address.is_unspecified or address.is_loopback:
        return False
    groups = [g for g in text.split(":") if g]
    return len(groups) >= 3 and any(ch.isdigit() for ch in text)


def compiled() -> dict[str, Callable[[str], bool]]:
    """The C twins of the digit validators (_validators.c) by name, when built: they check ASCII text
    themselves and hand anything else to the functions above, which stay the reference."""
    if os.environ.get("RELAY_PURE_PYTHON"):
        return {}
    try:
        from . import _walker
    except ImportError:
        return {}
    python: dict[str, Callable[[str], bool]] = {
        "credit_card_valid": credit_card_valid,
        "iban_valid": iban_valid,
        "ssn_valid": ssn_valid,
        "imei_valid": imei_valid,
        "phone_valid": phone_valid,
        "ipv4_public_or_private": ipv4_public_or_private,
    }
    _walker.configure_validators(
        fallbacks=python,
        iban_lengths=IBAN_LENGTHS,
        country_codes=_COUNTRY_CODES,
        imei_bodies=_IMEI_REPORTING_BODIES,
        card_groupings=_CARD_GROUPINGS,
    )
    return {name: getattr(_walker, name) for name in python}
