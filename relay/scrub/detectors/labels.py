"""Personal data found by its label or shape in free text: names (names.py), dates of birth (dates.py),
street addresses (addresses.py) and passport numbers (here).

The same data under a key (`dob`, `address`, `passport_number`, `first_name`) is for the packs' key rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import addresses, dates, names
from .base import Detector, Trigger, keyword_trigger
from .names import anchored

_PASSPORT_LABELS = (
    "passport", "reisepass", "pass-nr", "pass nr", "pass_nr", "passnr", "passnummer", "passeport", "pasaporte",
    "passaporto", "paszport", "passaporte", "pasaport", "паспорт", "旅券", "护照", "護照", "여권",
)  # fmt: skip
_NUMBER_WORDS = r"no|nr|n[º°]?|number|num|numero|número|numéro|nummer|numer|id|#|номер|番号|号码|號碼|번호"
_AFTER_LABEL = rf"(?:[ _-]?(?i:{_NUMBER_WORDS})\.?)?\]?[ ]?[\"']?[ ]?[:=#：]?[ ]?[\"']?"
# "Passport No. X1234567", "Reisepass-Nr.: C01X00T47", "numéro de passeport : 12AB34567", "паспорт 4510 123456",
# "[passport no] K07763148"
_PASSPORT = re.compile(
    anchored({_AFTER_LABEL: _PASSPORT_LABELS}, r"[^\W_]", fold=True)
    + r"(?P<secret>[A-Z0-9]{6,9}(?![\w])|[0-9]{2}[ ]?[0-9]{2}[ ][0-9]{6}(?![\w]))"
)


def _passport_validator(fires: Callable[[str], bool]) -> Callable[[str], bool]:
    def validate(text: str) -> bool:
        match = _PASSPORT.match(text)
        if match is None or not fires(text) or text.startswith("passport]"):  # our placeholder: idempotent
            return False
        number = match.group("secret").replace(" ", "")
        return any(ch.isdigit() for ch in number) and len(set(number)) > 2  # not "000000", not a word

    return validate


# Each label holds one ("saport": pasaporte, passaporto, passaporte, pasaport), chosen to begin with a pair
# of letters rarer than "pa", which the trigger's scan of every string then looks at less often.
_KEYWORDS = ("ssport", "epass", "ss-nr", "ss nr", "ss_nr", "ssnr", "ssnummer", "sseport", "saport", "szport",
             "паспорт", "旅券", "护照", "護照", "여권")  # fmt: skip
_TRIGGERS: dict[str, Trigger] = {"passport": Trigger(keywords=_KEYWORDS)}
_DETECTORS: tuple[Detector, ...] = (
    Detector("passport", "[passport]", _PASSPORT, lambda t: True,
             _passport_validator(keyword_trigger(_TRIGGERS["passport"])), "passport"),
)  # fmt: skip

DETECTORS: tuple[Detector, ...] = (*names.DETECTORS, *dates.DETECTORS, *addresses.DETECTORS, *_DETECTORS)
TRIGGERS: dict[str, Trigger] = {**names.TRIGGERS, **dates.TRIGGERS, **addresses.TRIGGERS, **_TRIGGERS}
# A key naming a passport number or a birth date is its label: {"x-passport-no": "T19446315"} is read as
# "x-passport-no: T19446315", {"x-date-of-birth": "1974-02-13"} likewise (planner._key_label).
KEY_LABEL_FAMILIES = frozenset({"passport", "date_of_birth"})
