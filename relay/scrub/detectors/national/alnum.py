"""Identifiers of letters and digits, without a label: codice fiscale, CURP, PAN, NINO, NIE, DNI, NRIC/FIN.

Their digit runs are too short for the `numeric` family's scan, so they have a built-in trigger of their own
(`alnum`: two capitals before a digit, or seven digits before a capital, one C pass with the others) and one
detector, `national_id_alnum`, whose match must pass the row's own check (python-stdnum's, or the row's).
Each form is matched as a whole token in capitals, as these identifiers are printed.
"""

from __future__ import annotations

import re

from ..base import Detector
from .kinds import NationalId

FAMILY = "alnum"  # the built-in trigger (detectors.builtin.TRIGGERS, _triggers.h)

# Row name -> the unlabelled form (case-sensitive). The PAN's fourth letter is its holder type.
FORMS = {
    "id_it_codice_fiscale": r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-EHLMPR-T][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]",
    "id_mx_curp": r"[A-Z]{4}[0-9]{6}[HMX][A-Z]{5}[0-9A-Z][0-9]",
    "id_in_pan": r"[A-Z]{3}[ABCFGHJLPT][A-Z][0-9]{4}[A-Z]",
    "id_gb_nino": r"[A-CEGHJ-PR-TW-Z]{2}[0-9]{6}[A-D]",
    "id_es_nie": r"[XYZ][0-9]{7}[A-Z]",
    "id_es_dni": r"[0-9]{8}[A-Z]",
    "id_sg_nric": r"[STFGM][0-9]{7}[A-Z]",
}


def alnum_detector(rows: tuple[NationalId, ...]) -> Detector:
    """`national_id_alnum`: the forms above, each valid when its row's check says so."""
    by_name = {row.name: row for row in rows}
    shapes = [(re.compile(form), by_name[name].check) for name, form in FORMS.items() if name in by_name]
    alternatives = "|".join(f"(?:{form})" for name, form in FORMS.items() if name in by_name)
    # (after a "/" too: an id in a URL path, /customers/RSSMRA85T10A562S)
    pattern = re.compile(rf"(?<![0-9A-Za-z_.+-])(?:{alternatives})(?![0-9A-Za-z_]|[.,-][0-9A-Za-z])")

    def validate(text: str) -> bool:
        return any(shape.fullmatch(text) is not None and check(text) for shape, check in shapes)

    return Detector("national_id_alnum", "[id]", pattern, lambda text: True, validate, FAMILY)


__all__ = ["FORMS", "alnum_detector"]
