"""Personal data from Faker's locale providers: names, emails, phones, addresses, birth dates, bank and card
numbers, national ids, passports, IP and MAC addresses."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Iterator
from datetime import date
from typing import Any

from .model import FREE_TEXT, Value, sub_rng

LOCALES = (
    "en_US",
    "en_GB",
    "de_DE",
    "fr_FR",
    "es_ES",
    "it_IT",
    "nl_NL",
    "pl_PL",
    "pt_BR",
    "sv_SE",
    "tr_TR",
    "ja_JP",
    "ko_KR",
    "zh_CN",
    "hi_IN",
    "da_DK",
    "fi_FI",
    "no_NO",
    "cs_CZ",
)

# Faker's `ssn()` per locale, and the stdnum module that says whether it is a real (valid) identifier.
# Locales whose `ssn()` is a US-style placeholder are left out; invalid outputs are dropped.
SSN_MODULES = {
    "en_US": "us.ssn",
    "fr_FR": "fr.nir",
    "it_IT": "it.codicefiscale",
    "nl_NL": "nl.bsn",
    "pl_PL": "pl.pesel",
    "pt_BR": "br.cpf",
    "sv_SE": "se.personnummer",
    "tr_TR": "tr.tckimlik",
    "ko_KR": "kr.rrn",
    "zh_CN": "cn.ric",
    "fi_FI": "fi.hetu",
    "no_NO": "no.fodselsnummer",
}

# How each locale writes a date of birth.
DOB_FORMATS = {
    "en_US": "%m/%d/%Y",
    "en_GB": "%d/%m/%Y",
    "de_DE": "%d.%m.%Y",
    "fr_FR": "%d/%m/%Y",
    "es_ES": "%d/%m/%Y",
    "it_IT": "%d/%m/%Y",
    "nl_NL": "%d-%m-%Y",
    "pl_PL": "%d.%m.%Y",
    "pt_BR": "%d/%m/%Y",
    "sv_SE": "%Y-%m-%d",
    "tr_TR": "%d.%m.%Y",
    "ja_JP": "{y}年{m}月{d}日",
    "ko_KR": "{y}년 {m}월 {d}일",
    "zh_CN": "{y}年{m}月{d}日",
    "hi_IN": "%d-%m-%Y",
    "da_DK": "%d-%m-%Y",
    "fi_FI": "%d.%m.%Y",
    "no_NO": "%d.%m.%Y",
    "cs_CZ": "%d. %m. %Y",
}

stats: dict[str, int] = {}  # dropped outputs, by reason (printed by the builder)


def faker_version() -> str:
    """The Faker version (its data changes between releases, so the corpus records it)."""
    from importlib.metadata import version

    return version("faker")


def _dob(born: date, locale: str) -> str:
    fmt = DOB_FORMATS[locale]
    if "{" in fmt:
        return fmt.format(y=born.year, m=born.month, d=born.day)
    return born.strftime(fmt)


def _unicode_email(fake: Any, rng: Any) -> str | None:
    """An internationalized address (RFC 6531) from the locale's own spelling of a name, when it is not ASCII."""
    first, last = fake.first_name().lower(), fake.last_name().lower().replace(" ", "")
    if (first + last).isascii():
        return None
    if rng.random() < 0.5:
        return f"{first}.{last}@{fake.free_email_domain()}"
    # An IDN domain: the name as the domain label, the locale's country TLD or .com.
    return f"{fake.user_name()}@{last}.{rng.choice(['com', 'net', 'org'])}"


def _valid_ssn(locale: str, text: str) -> bool:
    module = importlib.import_module("stdnum." + SSN_MODULES[locale])
    return bool(module.is_valid(text))


def _one_locale(locale: str, seed: int, rounds: int) -> Iterator[Value]:
    from faker import Faker

    rng = sub_rng(seed, "faker:" + locale)
    fake = Faker(locale)
    fake.seed_instance(f"{seed}:{locale}")

    def val(kind: str, text: str, label: str, **kw: Any) -> Value:
        return Value(kind, text, locale, label, "faker", **kw)

    for _ in range(rounds):
        yield val("name", fake.name(), "full_name", weak=True)
        # A name in a sentence with no label next to it: the hard case (a target of its own in the report).
        yield val("name_free_text", f"{fake.first_name()} {fake.last_name()}", "name", placements=(FREE_TEXT,))
        yield val("email", rng.choice([fake.email, fake.free_email, fake.company_email])(), "email")
        uni = _unicode_email(fake, rng)
        if uni is not None:
            yield val("email_unicode", uni, "email")
        phone = fake.phone_number()
        yield val("phone_faker", phone, "phone", weak=not phone.startswith("+"))
        yield val("address", fake.address().replace("\n", ", "), "address", weak=True)
        born = fake.date_of_birth(minimum_age=18, maximum_age=90)
        yield val("dob", _dob(born, locale), "date_of_birth", weak=True)
        iban = _iban(fake, locale, rng)
        if iban is not None:
            yield val("iban", iban, "iban")
        card = fake.credit_card_number()
        if rng.random() < 0.5 and len(card) == 16:
            card = " ".join(card[i : i + 4] for i in range(0, 16, 4))
        yield val("card", card, "card_number")
        if locale in SSN_MODULES:
            ssn = fake.ssn()
            if _valid_ssn(locale, ssn):
                yield val("national_id_faker", ssn, SSN_MODULES[locale].split(".")[1], weak=ssn.isdigit())
            else:
                reason = f"faker ssn() rejected by stdnum ({locale})"
                stats[reason] = stats.get(reason, 0) + 1
        yield val("passport", fake.passport_number(), "passport_no", weak=True)
        yield val("ipv4", fake.ipv4_public(), "client_ip")
        if rng.random() < 0.4:
            yield val("ipv6", fake.ipv6(), "client_ip")
        if rng.random() < 0.4:
            yield val("mac", fake.mac_address(), "mac_address")


def _iban(fake: Any, locale: str, rng: Any) -> str | None:
    from stdnum import iban

    text = fake.iban()
    if not text[:2].isalpha() or not iban.is_valid(text):
        return None
    if text[:2] != locale[-2:]:  # some providers fall back to a GB number; keep the locale's own country
        return None
    return str(iban.format(text)) if rng.random() < 0.5 else text


def values(seed: int, rounds: int = 6) -> Iterator[Value]:
    """`rounds` people per locale."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for locale in LOCALES:
            yield from _one_locale(locale, seed, rounds)
