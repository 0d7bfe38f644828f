"""United States (SSN without dashes, ITIN), Canada (SIN), Brazil (CPF, CNPJ) and Mexico (CURP).

The built-in `us_ssn` finds dashed and spaced SSNs on their own; nine bare digits are an SSN only after a
label (`SSN: 123456789`), as they are a SIN, a BSN or a TFN only after theirs.
"""

from __future__ import annotations

from stdnum.br import cnpj, cpf
from stdnum.ca import sin
from stdnum.mx import curp
from stdnum.us import itin, ssn

from .kinds import NationalId, checked, phrase, term, word

_NINE_DIGITS = r"[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}"

FAMILY = "national_americas"
ROWS: tuple[NationalId, ...] = (
    NationalId(
        "id_us_ssn",
        (word("ssn"), phrase("social", "security")),
        _NINE_DIGITS,
        checked(ssn.is_valid),
        placeholder="[ssn]",
        # No checksum, only ranges and a blocklist; the built-in us_ssn detector judges SSNs by their form.
        near_miss=False,
    ),
    NationalId(
        "id_us_itin",
        (word("itin"),),
        _NINE_DIGITS,
        checked(itin.is_valid),
        strong=r"9[0-9]{2}-[0-9]{2}-[0-9]{4}",  # 9XX-7X-XXXX: never an SSN, so us_ssn leaves it
    ),
    NationalId(
        "id_ca_sin",
        (word("sin"), phrase("social", "insurance"), phrase("assurance", "sociale")),
        r"[0-9]{3}[- ]?[0-9]{3}[- ]?[0-9]{3}",
        checked(sin.is_valid),
    ),
    NationalId(
        "id_br_cpf",
        (word("cpf"),),
        r"[0-9]{3}[. ]?[0-9]{3}[. ]?[0-9]{3}[-. ]?[0-9]{2}",  # 529.982.247-25, 529 982 247 25, 52998224725
        checked(cpf.is_valid),
        strong=r"[0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}",  # 123.456.789-09
    ),
    NationalId(
        "id_br_cnpj",
        (term("cnpj"),),
        r"[0-9]{2}\.?[0-9]{3}\.?[0-9]{3}/?[0-9]{4}-?[0-9]{2}",
        checked(cnpj.is_valid),
        strong=r"[0-9]{2}\.[0-9]{3}\.[0-9]{3}/[0-9]{4}-[0-9]{2}",  # 12.345.678/0001-95
    ),
    NationalId(
        "id_mx_curp",
        (term("curp"),),
        r"[A-Z]{4}[0-9]{6}[HMX][A-Z]{5}[0-9A-Z][0-9]",  # GOMC850101HDFRRN09
        checked(curp.is_valid),
    ),
)
