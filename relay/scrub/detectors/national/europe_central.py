"""Germany (Steuer-ID), the Netherlands (BSN), Belgium (national number), Poland (PESEL) and Turkey (TCKN)."""

from __future__ import annotations

import re

from stdnum.be import nn
from stdnum.de import idnr
from stdnum.nl import bsn
from stdnum.pl import pesel
from stdnum.tr import tckimlik

from .kinds import NationalId, checked, compact, phrase, term, word

FAMILY = "national_europe_central"
_CALVER = re.compile(r"(?:19|20)[0-9]{2}\.(?:0[1-9]|1[0-2])\.[0-9]{3}")  # year.month.build
ROWS: tuple[NationalId, ...] = (
    NationalId(
        "id_de_steuer_id",
        (
            # Steuer-ID, Steuer-IdNr., steuerliche Identifikationsnummer, Steueridentifikationsnummer
            term("steuer", r"steuer(?:liche)?[ _-]?id(?:entifikations)?(?:[ _.-]?(?:nr|nummer))?\.?"),
            term("idnr"),
            term("identifikationsnummer"),
        ),
        r"[0-9]{2} ?[0-9]{3} ?[0-9]{3} ?[0-9]{3}",  # 12 345 678 901, 12345678901
        checked(idnr.is_valid),
    ),
    NationalId(
        "id_nl_bsn",
        (word("bsn"), term("burgerservicenummer"), phrase("sofi", "nummer")),
        # 1234.56.789, 1234 56 789, 123 456 789; 8 digits: a dropped leading 0
        r"[0-9]{4}[. ]?[0-9]{2}[. ]?[0-9]{3}|[0-9]{3} [0-9]{3} [0-9]{3}|[0-9]{8}",
        checked(bsn.is_valid),
        # 1234.56.782, the way Dutch forms print it: not a calendar version (2024.05.123)
        strong=r"[0-9]{4}\.[0-9]{2}\.[0-9]{3}",
        strong_check=lambda value: bsn.is_valid(compact(value)) and not _CALVER.fullmatch(value),
    ),
    NationalId(
        "id_be_nn",
        (
            term("rijksregister", r"rijksregister(?:[ _-]?nummer)?"),
            phrase("national", "number"),
            phrase(("numéro", "numero", "n°"), "national"),
            phrase("registre", "national"),
            word("insz"),
            word("niss"),
            word("rrn"),
        ),
        r"[0-9]{2}[. ]?[0-9]{2}[. ]?[0-9]{2}[ -]?[0-9]{3}[. ]?[0-9]{2}",
        checked(nn.is_valid),
        strong=r"[0-9]{2}\.[0-9]{2}\.[0-9]{2}-[0-9]{3}\.[0-9]{2}",  # 85.07.30-033.28
    ),
    NationalId("id_pl_pesel", (term("pesel"),), r"[0-9]{11}", checked(pesel.is_valid)),
    NationalId(
        "id_tr_tckn",
        (term("tckn"), term("kimlik", r"(?:t\.? ?c\.? ?)?kimlik(?:[ _-]?(?:no|numaras[\u0131I]))?", first="tk")),
        r"[1-9][0-9]{10}",
        checked(tckimlik.is_valid),
    ),
)
