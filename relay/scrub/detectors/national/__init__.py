"""National identifiers, validated: one row per identifier in the region modules, built into detectors by `kinds`.

- `id_<country>_<identifier>` (e.g. `id_gb_nino`, `id_br_cpf`): the identifier after a label (`NINO:`,
  `cpf=`, `Aadhaar no.`, `身份证号码:`), in any of its written forms, checksum or structure checked.
  One keyword family per region module (`national_europe_west`, ...), woken by its labels.
- `national_id`: the forms that identify themselves without a label (CPF `123.456.789-09`, CNPJ, NINO
  `AB 12 34 56 C`, DNI, NIE, NRIC, Chinese and Korean IDs, Swedish, Finnish, Norwegian, Belgian, French and
  South African numbers in their usual separated forms, dashed ITINs), checksum or structure checked.
  A member of the built-in `numeric` family.
- `national_id_near_miss`: a value after an identifier's label, in that identifier's shape, that fails its
  check. The pii pack keeps it (a mistyped NHS number is not a phone number), in a family of its own woken
  by every identifier's labels.

Placeholders are `[id]`, and `[ssn]` for US SSNs (as the built-in `us_ssn` detector). A value under a key that
names an identifier (`ssn`, `user_cpf`, `bsn`) is read with the key as its label (KEY_LABEL_FAMILIES): the
checksum must still hold, so `{"bsn": "326406028"}` (a wrong check digit) is kept.
"""

from __future__ import annotations

from ..base import Detector, Trigger
from . import africa, americas, asia_pacific, europe_central, europe_west, nordics
from .alnum import alnum_detector
from .kinds import NEAR_MISS_FAMILY, NationalId, label_trigger, labelled_detector, near_miss_detector, strong_detector

_REGIONS = (europe_west, europe_central, nordics, americas, asia_pacific, africa)

ROWS: tuple[NationalId, ...] = tuple(row for region in _REGIONS for row in region.ROWS)

TRIGGERS: dict[str, Trigger] = {region.FAMILY: label_trigger(region.ROWS) for region in _REGIONS}
TRIGGERS[NEAR_MISS_FAMILY] = label_trigger(ROWS)

DETECTORS: tuple[Detector, ...] = (
    *(labelled_detector(row, region.FAMILY, TRIGGERS[region.FAMILY]) for region in _REGIONS for row in region.ROWS),
    strong_detector(ROWS),
    alnum_detector(ROWS),
    near_miss_detector(ROWS, TRIGGERS[NEAR_MISS_FAMILY]),
)

# Families whose labels a key name can be: the engine reads `{"cpf": "..."}` as "cpf: ..." (planner._key_label).
KEY_LABEL_FAMILIES = frozenset(TRIGGERS)

__all__ = ["DETECTORS", "KEY_LABEL_FAMILIES", "ROWS", "TRIGGERS"]
