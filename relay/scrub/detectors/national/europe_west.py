"""United Kingdom (NINO, NHS number), France (NIR), Spain (DNI, NIE, CIF) and Italy (codice fiscale)."""

from __future__ import annotations

from stdnum.es import cif, dni, nie
from stdnum.fr import nir
from stdnum.gb import nhs
from stdnum.it import codicefiscale

from .kinds import NationalId, checked, phrase, term, word

# HMRC: D, F, I, Q, U and V are never a prefix letter, O never the second; these prefixes are not issued.
_NINO_UNUSED_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def nino_valid(number: str) -> bool:
    """A National Insurance number's structure (it has no check digit): prefix letters, six digits, A-D."""
    return (
        len(number) == 9
        and number[0] not in "DFIQUV"
        and number[1] not in "DFIOQUV"
        and number[:2] not in _NINO_UNUSED_PREFIXES
        and number[:2].isalpha()
        and number[2:8].isdigit()
        and number[8] in "ABCD"
    )


FAMILY = "national_europe_west"
ROWS: tuple[NationalId, ...] = (
    NationalId(
        "id_gb_nino",
        (word("nino"), phrase("national", "insurance"), phrase("ni", ("number", "no"))),
        r"[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]",
        checked(nino_valid),
        strong=r"[A-Z]{2} [0-9]{2} [0-9]{2} [0-9]{2} [A-D]",  # AB 12 34 56 C
    ),
    NationalId(
        "id_gb_nhs",
        (word("nhs"),),  # "NHS number", "NHS no." through the qualifier
        r"[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}",  # 943 476 5919: a phone number's shape, so a label is needed
        checked(nhs.is_valid),
    ),
    NationalId(
        "id_fr_nir",
        (word("nir"), term("insee"), phrase(("sécurité", "securite", "sécu", "secu"), "sociale")),
        r"[1-478] ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}",
        checked(nir.is_valid),
        strong=r"[1-478] [0-9]{2} [0-9]{2} (?:[0-9]{2}|2[AB]) [0-9]{3} [0-9]{3} [0-9]{2}",  # 2 84 12 76 451 089 46
    ),
    NationalId(
        "id_es_dni",
        (word("dni"), word("nif")),
        r"[0-9]{8}[ -]?[A-Z]|[0-9]{2}\.[0-9]{3}\.[0-9]{3}[ -]?[A-Z]",
        checked(dni.is_valid),
        strong=r"[0-9]{8}-?[A-Z]|[0-9]{2}\.[0-9]{3}\.[0-9]{3}-?[A-Z]",  # 12345678Z, 12.345.678-Z
    ),
    NationalId(
        "id_es_nie",
        (word("nie"), word("nif")),
        r"[XYZ][ -]?[0-9]{7}[ -]?[A-Z]",
        checked(nie.is_valid),
        strong=r"[XYZ]-?[0-9]{7}-?[A-Z]",  # X1234567L
    ),
    NationalId(
        "id_es_cif",
        (word("cif"), word("nif")),
        r"[ABCDEFGHJNPQRSUVW][ -]?[0-9]{7}[ -]?[0-9A-J]",  # a letter, 7 digits, a check: a SKU's shape
        checked(cif.is_valid),
    ),
    NationalId(
        "id_it_codice_fiscale",
        (term("fisc", r"cod(?:ice)?[ ._-]{0,2}fisc(?:ale)?\.?", first="c"), term("c.f.", r"c\.f\.")),
        # Letters may stand in for digits (omocodia); the month is a letter.
        r"[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]",
        checked(codicefiscale.is_valid),
    ),
)
