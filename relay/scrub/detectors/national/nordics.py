"""Sweden (personnummer), Denmark (CPR), Finland (henkilötunnus) and Norway (fødselsnummer).

All four begin with the birth date. Sweden's and Finland's check digits make their dashed forms
(`811218-9876`, `131052-308T`) safe without a label, and Norway's two check digits its spaced one
(`010190 12345`); the other signs (`+`, Finland's `A` for the 2000s) split the digit run that wakes the
numeric family, so those need a label. A Danish CPR number has had no check digit since 2007:
`DDMMYY-NNNN` is then just a date and four digits, which is also how date-prefixed order and batch numbers
look, so it needs a label.
"""

from __future__ import annotations

from stdnum.dk import cpr
from stdnum.fi import hetu
from stdnum.no import fodselsnummer
from stdnum.se import personnummer

from .kinds import NationalId, checked, term, word

_PERSONNUMMER = term("personnummer")  # Swedish, Danish and Norwegian alike: each row's check decides


def _se_valid(value: str) -> bool:
    # The sign before the last four digits says "100 or older" ("+"); python-stdnum reads it.
    return personnummer.is_valid(value.replace(" ", ""))


def _fi_valid(value: str) -> bool:
    return hetu.is_valid(value.upper())


FAMILY = "national_nordics"
ROWS: tuple[NationalId, ...] = (
    NationalId(
        "id_se_personnummer",
        (_PERSONNUMMER, term("personnr", r"person[ -]?nr"), term("samordningsnummer")),
        r"(?:[0-9]{2})?[0-9]{6}[-+ ]?[0-9]{4}",  # 811218-9876, 19811218-9876, 198112189876
        _se_valid,
        strong=r"(?:[0-9]{2})?[0-9]{6}-[0-9]{4}",  # "+" (100 or older) breaks the digit run the trigger needs
    ),
    NationalId(
        "id_dk_cpr",
        (word("cpr"), _PERSONNUMMER),  # "CPR-nr.", "CPR-nummer" through the qualifier
        r"[0-9]{6}[ -]?[0-9]{4}",
        checked(cpr.is_valid),
    ),
    NationalId(
        "id_fi_hetu",
        (term("hetu"), term("henkilötunnus"), term("henkilotunnus"), term("personbeteckning"), term("sotu")),
        r"[0-9]{6}[-+A-FU-Y][0-9]{3}[0-9A-Y]",  # the sign says the century: - 1900s, + 1800s, A-F 2000s
        _fi_valid,
        strong=r"[0-9]{6}-[0-9]{3}[0-9A-Y]",  # 1900s; a letter sign leaves too short a digit run: a label then
    ),
    NationalId(
        "id_no_fodselsnummer",
        (term("fødselsnummer"), term("fodselsnummer"), term("foedselsnummer"), word("fnr"), _PERSONNUMMER),
        r"[0-9]{6} ?[0-9]{5}",
        checked(fodselsnummer.is_valid),
        strong=r"[0-9]{6} [0-9]{5}",
    ),
)
