"""Phone numbers as the world writes them, validated by libphonenumber (`phonenumbers`).

A candidate passes when the quick C check (validators.phone_valid: E.164 country codes, NANP, trunk-0
national numbers) accepts it, or when libphonenumber does: an international number (`+...`, even glued to
a prefix like `otp:+4915...`) must be a valid number; a national one must be valid in one of the configured
regions (`scrub.phone_regions`) AND be grouped the way that region writes its numbers (`516 113 875` in
Poland, `(11) 96880-3282` in Brazil), which keeps dates, versions and spaced ids out. Only regions that
write numbers with the candidate's digit groups are asked, so a candidate costs a dictionary look-up and
at most a few parses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType, re_util

from .base import Detector, Trigger

# libphonenumber's metadata regexes, compiled once each: with many regions they overflow the `re` module's own
# cache of 512, and recompiling them cost more than the rest of scrubbing an event.
re_util.enable_pattern_cache()

# Where most of the relay's users are; `scrub.phone_regions` replaces it.
DEFAULT_REGIONS = (
    "US", "CA", "MX", "BR", "AR", "CL", "CO", "PE", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "LU", "ES",
    "PT", "IT", "PL", "CZ", "SK", "HU", "RO", "BG", "GR", "SE", "DK", "NO", "FI", "IS", "EE", "LV", "LT", "UA",
    "RU", "TR", "IL", "AE", "SA", "EG", "ZA", "NG", "KE", "IN", "PK", "BD", "CN", "HK", "TW", "JP", "KR", "SG",
    "MY", "TH", "VN", "PH", "ID", "AU", "NZ",
)  # fmt: skip

# The regex alternatives of the phone detector (builtin.py), each with its own lookbehind: an international
# number may be glued to anything but a digit or "+", a national one must stand apart.
PATTERN = (
    r"(?<![\d+\]-])\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?(?:[ .-]?\d{1,5}){2,6}"  # +44 20 7946 0958, otp:+4915112345678
    r"|(?<![\w+\]-])\(\+\d{1,3}\)(?:[ .-]?\d{1,5}){2,6}"  # (+358) 816469994
    r"|(?<![\w+.:/\]-])(?:"
    r"\(\d{1,5}\)[ .-]?\d{2,5}(?:[ .-]\d{2,5}){0,3}"  # (415) 555-0100, (11) 96880-3282, (02) 1234 5678
    r"|\d{3}(?P<sep>[-. ])\d{3}(?P=sep)\d{4}"  # 415-555-0100, 415.555.0100
    r"|0\d{1,4}(?:[ /-]\d{2,8}){1,4}"  # 020 7946 0958, 0176 12345678, 030/1234567, 06 12 34 56 78
    # 516 113 875, 138 0013 8000, 98765 43210 (grouped as the region groups them; not inside a longer run;
    # not with dots, which IPs and versions have)
    r"|(?<!\d[ .-])[1-9]\d{1,4}(?:[ -]\d{2,5}){1,4}"
    r")"
)
_GROUPS = re.compile(r"\d+")
_TYPES = (
    PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE, PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.UAN, PhoneNumberType.SHARED_COST,
)  # fmt: skip

_regions: tuple[str, ...] = ()
_by_shape: dict[tuple[int, ...], tuple[str, ...]] = {}


def set_regions(regions: Iterable[str]) -> None:
    """Validate national numbers for these regions (ISO 3166 codes); raises ValueError naming an unknown one."""
    global _regions, _by_shape
    chosen = tuple(dict.fromkeys(r.upper() for r in regions))
    unknown = [r for r in chosen if r not in phonenumbers.SUPPORTED_REGIONS]
    if unknown:
        raise ValueError(f"unknown phone region(s): {', '.join(unknown)}")
    if chosen == _regions:
        return
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for region in chosen:
        for kind in _TYPES:
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            groups = _GROUPS.findall(phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL))
            shapes = {tuple(len(g) for g in groups)}
            if groups and groups[0].startswith("0") and len(groups[0]) > 1:  # written without the trunk 0
                shapes.add((len(groups[0]) - 1, *(len(g) for g in groups[1:])))
            for shape in shapes:
                if region not in by_shape.setdefault(shape, []):
                    by_shape[shape].append(region)
    _regions, _by_shape = chosen, {shape: tuple(found) for shape, found in by_shape.items()}
    _national.cache_clear()


def regions() -> tuple[str, ...]:
    """The regions national numbers are validated for."""
    return _regions


def _grouped_alike(written: list[str], canonical: list[str]) -> bool:
    if written == canonical:
        return True
    # the trunk prefix left off: "98765 43210" for India's "098765 43210"
    return (
        len(written) == len(canonical)
        and canonical[0].startswith("0")
        and written[0] == canonical[0][1:]
        and written[1:] == canonical[1:]
    )


_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")
_YEAR_MONTH = re.compile(r"(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])")
_MIN_NATIONAL_DIGITS = 8  # "555 0134" alone is as likely a count as a local number


@lru_cache(maxsize=1024)
def _region_pattern(region: str) -> tuple[str, re.Pattern[str]]:
    """A region's trunk prefix and the pattern every national number of it matches."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    general = metadata.general_desc.national_number_pattern if metadata and metadata.general_desc else None
    return (metadata.national_prefix or "") if metadata else "", re.compile(general or "(?!)")


def _plausible(region: str, digits: str) -> bool:
    """Whether `digits` (a trunk prefix or not) can be a national number of `region`: one regex, which most
    candidates fail before the full parse."""
    trunk, general = _region_pattern(region)
    return general.fullmatch(digits) is not None or bool(
        trunk and digits.startswith(trunk) and general.fullmatch(digits, len(trunk)) is not None
    )


@lru_cache(maxsize=4096)
def _national(text: str) -> bool:
    groups = _GROUPS.findall(text)
    digits = "".join(groups)
    if len(digits) < _MIN_NATIONAL_DIGITS:
        return False
    for region in _by_shape.get(tuple(len(g) for g in groups), ()):
        if not _plausible(region, digits):
            continue
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number) and _grouped_alike(
            groups, _GROUPS.findall(phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL))
        ):
            return True
    return False


@lru_cache(maxsize=4096)
def _international(text: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, None))
    except phonenumbers.NumberParseException:
        return False


def international(text: str) -> bool:
    """Written with a country code: such a candidate may be cut to a valid prefix (see Detector.cut)."""
    return text.lstrip().startswith(("+", "(+"))


def validator(quick: Callable[[str], bool]) -> Callable[[str], bool]:
    """The phone validator: `quick` (the C or Python check of validators.phone_valid), then libphonenumber."""

    def phone_valid(text: str) -> bool:
        if quick(text):
            return True
        stripped = text.strip()
        if stripped.startswith("+"):
            return _international(stripped)
        if stripped.startswith("(+"):
            return _international(stripped.replace("(", "", 1).replace(")", "", 1))
        return _national(stripped)

    return phone_valid


@lru_cache(maxsize=4096)
def _possible(digits: str) -> bool:
    """A number of a possible length for its country code (a label says it is a phone: assigned or not)."""
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse("+" + digits, None))
    except phonenumbers.NumberParseException:
        return False


def _calendar_date(number: str) -> bool:
    """ "1956-04-23", "23.04.56": a date after "tel" is a date (not "75.12.34": no month 12 has a day 75)."""
    if _YEAR_MONTH.fullmatch(number) is not None:
        return True  # what is left of a date cut short ("1956-04" of "1956-04-23")
    if _DATE.fullmatch(number) is None:
        return False
    first, second, third = (int(n) for n in _GROUPS.findall(number))
    if first > 31:  # year first
        return 1 <= second <= 12 and 1 <= third <= 31
    return 1 <= first <= 31 and 1 <= second <= 31 and (first <= 12 or second <= 12)


def _labelled_valid(match: str) -> bool:
    """The number after a phone label (the match holds the label): of a possible length, internationally or in
    any region's numbering plan."""
    found = _LABELLED.search(match)
    if found is None:
        return False
    number = found.group("secret").strip().lstrip("(")
    if _calendar_date(number):
        return False
    digits = "".join(_GROUPS.findall(number))
    if number.startswith("+") or number.startswith("00"):
        return 7 <= len(digits.lstrip("0")) <= 15 and _possible(digits.lstrip("0"))
    # National: 5-15 digits, as long as the world's national numbers are (Saint Helena's are 5 digits, Tuvalu's
    # 5-6): whether it is assigned, or in which region, the label has already said.
    return 5 <= len(digits) <= 15


# Words that name a phone number, lower case: the keyword family's trigger, and what the label regex spells.
LABELS = (
    "phone", "tel", "mobile", "cell", "fax", "handy", "telefon", "teléfono", "telefono", "téléphone", "telefone",
    "telefoon", "puhelin", "telefonnummer", "whatsapp", "sms", "msisdn", "celular", "móvil", "movil", "portable",
    "cellulare", "komórka", "komorka", "手机", "電話", "电话", "携帯", "전화", "휴대폰", "телефон",
)  # fmt: skip
_LABEL = (
    r"(?<![^\W_])(?:phone|tel(?:ephone)?|mobile|cell(?:ular|phone)?|fax|handy|telefon(?:nummer)?|tel[eé]fono|"
    r"t[eé]l[eé]phone|telefone|telefoon|puhelin|whatsapp|sms|msisdn|celular|m[oó]vil|portable|cellulare|"
    r"kom[oó]rka|手机|電話|电话|携帯|전화|휴대폰|телефон)"
)
_LABELLED = re.compile(
    _LABEL
    + r"(?:[ _-]?(?:no|nr|number|num|nummer|n[uú]mero|#)|[_-]?[0-9])?\.?[ \t\"'\])]{0,3}[:=#\uff1a]?[ \t\"']{0,3}"
    r"(?P<secret>\(?\+?\(?\d[\d ()./-]{3,18}\d)(?![\d-]|[.:]\d|T\d)",
    re.IGNORECASE,
)
DETECTORS = (Detector("phone_labelled", "[phone]", _LABELLED, lambda text: True, _labelled_valid, "phone_label"),)
TRIGGERS = {"phone_label": Trigger(keywords=LABELS)}
# A key naming a phone is its label: {"x-phone2": "18490959277"} is read as "x-phone2: 18490959277".
KEY_LABEL_FAMILIES = frozenset(TRIGGERS)

set_regions(DEFAULT_REGIONS)

__all__ = [
    "DEFAULT_REGIONS",
    "DETECTORS",
    "KEY_LABEL_FAMILIES",
    "PATTERN",
    "TRIGGERS",
    "regions",
    "set_regions",
    "validator",
]
