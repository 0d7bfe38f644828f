"""Dates of birth next to their labels ("DOB: 15.03.1985", "born on March 15, 1985", "né le 15 mars 1985",
"Geburtsdatum: 15.03.1985", "生年月日：1985年3月15日"). Only the date is replaced; dates without such a label
(timestamps, release dates) are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .base import Detector, Trigger, keyword_trigger
from .names import anchored, joined

# Month names and their abbreviations in English, German, French, Spanish, Italian, Dutch, Portuguese,
# Polish (nominative and genitive), the Scandinavian languages and Turkish.
_MONTHS = """
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    januar jänner februar märz mai juni juli oktober dezember mär okt dez
    janvier février fevrier mars avril juin juillet août aout septembre octobre novembre décembre decembre
    janv févr fevr avr juil déc
    enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre diciembre ene abr ago dic
    gennaio febbraio aprile maggio giugno luglio settembre ottobre dicembre gen mag giu lug ott
    januari februari maart mei augustus mrt
    janeiro fevereiro março maio junho julho setembro outubro novembro dezembro fev set out
    stycznia lutego marca kwietnia maja czerwca lipca sierpnia września października listopada grudnia
    styczeń luty marzec kwiecień maj czerwiec lipiec sierpień wrzesień październik listopad grudzień
    augusti marts
    ocak şubat mart nisan mayıs haziran temmuz ağustos eylül ekim kasım aralık
"""
_MONTH = "|".join(sorted(set(_MONTHS.split()), key=len, reverse=True))
_TIME = r"(?:[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
DATE = (
    rf"[0-9]{{4}}(?P<isep>[-/.])[0-9]{{1,2}}(?P=isep)[0-9]{{1,2}}{_TIME}"  # 1985-03-15, 1985/03/15
    r"|[0-9]{1,2}(?P<sep>[-/.])[0-9]{1,2}(?P=sep)(?:[0-9]{4}|[0-9]{2})"  # 15.03.1985, 03/15/1985, 15-03-85
    rf"|[0-9]{{1,2}}(?:st|nd|rd|th|er|º|\.)?[ ](?:de[ ])?(?i:{_MONTH})\.?,?[ ](?:de[ ])?[0-9]{{4}}"  # 15 mars 1985
    rf"|(?i:{_MONTH})\.?[ ][0-9]{{1,2}}(?:st|nd|rd|th)?,?[ ][0-9]{{4}}"  # March 15, 1985
    r"|[0-9]{4}年[ ]?[0-9]{1,2}月[ ]?[0-9]{1,2}日|[0-9]{4}년[ ]?[0-9]{1,2}월[ ]?[0-9]{1,2}일"
    r"|[0-9]{4}\.[ ][0-9]{1,2}\.[ ][0-9]{1,2}\.?"  # 1985. 3. 15.
    r"|[0-9]{1,2}\.[ ][0-9]{1,2}\.[ ][0-9]{4}"  # 15. 3. 1985
)
_LABELS = (
    "dob", "d.o.b", "d.o.b.", *joined("date", "of", "birth"), *joined("birth", "date"), "birthday", "birth", "born",
    "born on", "date de naissance", "né le", "née le", "geboren", "geboren am", "geburtsdatum", "geburtstag", "geb.",
    "fecha de nacimiento", "nacimiento", "nacido el", "nacida el", "data di nascita", "nato il", "nata il",
    "geboortedatum", "geboren op", "data urodzenia", "urodzony", "urodzona", "data de nascimento", "nascido em",
    "nascida em", "doğum tarihi", "födelsedatum", "fødselsdato", "født", "syntymäaika", "дата рождения",
    "datum narození", "narozen", "narozena", "生年月日", "出生日期", "생년월일",
)  # fmt: skip
# (a closing bracket too: "[date of birth] 1956-04-23"; but not after our own placeholder "[dob]")
_SEP = r"\]?[\"']?[ ]?(?:[:=：][ ]?|(?:on|am|le|el|il|em|op|the)[ ])?[\"']?"
_DATE_OF_BIRTH = re.compile(anchored({_SEP: _LABELS}, r"[^\W_]", fold=True) + rf"(?P<secret>{DATE})(?![0-9])")

KEYWORDS = ("dob", "d.o.b", "birth", "born", "aissance", "né le", "née le", "eboren", "eburt", "geb.",
            "cimiento", "nacid", "scita", "nato il", "nata il", "eboorte", "urodz", "scimento", "scid", "oğum",
            "födelse", "fødsel", "født", "narozen", "syntymä", "рождения", "生年月日", "出生日期",
            "생년월일")  # fmt: skip
_NUMBERS = re.compile(r"[0-9]+")
_NUMERIC_DATE = re.compile(r"[0-9]+[-/.年년][ ]?[0-9]")


def _plausible(date: str) -> bool:
    """A calendar date: month 1-12 and day 1-31 where the date is all digits, a year from 1900 on."""
    numbers = [int(n) for n in _NUMBERS.findall(date)]
    if len(numbers) < 3 or not _NUMERIC_DATE.match(date):
        return True  # a month name: the pattern already fixed the shape
    if numbers[0] >= 1000:  # year first
        year, month, day = numbers[:3]
    else:  # day and month in either order, a 2- or 4-digit year
        day, month, year = numbers[:3]
        if month > 12:
            day, month = month, day
    return 1 <= month <= 12 and 1 <= day <= 31 and (year < 100 or 1900 <= year <= 2100)


def _validator(fires: Callable[[str], bool]) -> Callable[[str], bool]:
    def validate(text: str) -> bool:
        match = _DATE_OF_BIRTH.match(text)
        # `re` folds a little more than the trigger does ("ſ" is "s"): such a match would never be woken
        return (
            match is not None
            and fires(text)
            and _plausible(match.group("secret"))
            and not text.startswith("dob]")  # after our placeholder "[dob]": scrubbing stays idempotent
        )

    return validate


TRIGGERS: dict[str, Trigger] = {"date_of_birth": Trigger(keywords=KEYWORDS)}
DETECTORS: tuple[Detector, ...] = (
    Detector("date_of_birth", "[dob]", _DATE_OF_BIRTH, lambda t: True,
             _validator(keyword_trigger(TRIGGERS["date_of_birth"])), "date_of_birth"),
)  # fmt: skip
