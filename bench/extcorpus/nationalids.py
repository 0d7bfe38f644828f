"""National identifiers, valid per python-stdnum, and checksum-broken near misses as decoys.

A random body is drawn in each identifier's shape; the check characters are found by trying every tail
and keeping those stdnum's `is_valid` accepts (a tail it rejects makes the decoy). Each is written the way
its module's `format()` writes it, compact, or with the separators swapped for spaces.

Not in stdnum, so not here: Singapore NRIC, Australian Medicare. The UK NINO has no check digit and no
stdnum module: its prefix rules (HMRC's published ones) decide validity below.
"""

from __future__ import annotations

import importlib
import itertools
import random
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from .model import Value, sub_rng

D = string.digits
U = string.ascii_uppercase


def _n(rng: random.Random, k: int, alphabet: str = D) -> str:
    return "".join(rng.choice(alphabet) for _ in range(k))


def _born(rng: random.Random, lo: int = 1940, hi: int = 2005) -> date:
    return date(lo, 1, 1) + timedelta(days=rng.randrange((date(hi, 12, 31) - date(lo, 1, 1)).days))


def _yymmdd(rng: random.Random) -> str:
    return _born(rng).strftime("%y%m%d")


def _ddmmyy(rng: random.Random) -> str:
    return _born(rng).strftime("%d%m%y")


# The UK National Insurance number (HMRC: no D, F, I, Q, U, V first; no D, F, I, O, Q, U, V second;
# BG, GB, KN, NK, NT, TN and ZZ never issued; suffix A-D).
_NINO_BAD_PAIRS = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


class _Nino:
    @staticmethod
    def is_valid(text: str) -> bool:
        t = text.replace(" ", "").upper()
        return bool(re.fullmatch(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]", t) and t[:2] not in _NINO_BAD_PAIRS)

    @staticmethod
    def format(text: str) -> str:
        return " ".join([text[:2], text[2:4], text[4:6], text[6:8], text[8:]])


_CURP_STATES = [
    "AS",
    "BC",
    "BS",
    "CC",
    "CL",
    "CM",
    "CS",
    "CH",
    "DF",
    "DG",
    "GT",
    "GR",
    "HG",
    "JC",
    "MC",
    "MN",
    "MS",
    "NT",
    "NL",
    "OC",
    "PL",
    "QT",
    "QR",
    "SP",
    "SL",
    "SR",
    "TC",
    "TS",
    "TL",
    "VZ",
    "YN",
    "ZS",
]
_CN_AREAS = ["110101", "310104", "440305", "510107", "330106", "420102", "320102", "610113"]
_CF_MONTHS = "ABCDEHLMPRST"
_CONSONANTS = "BCDFGHJKLMNPQRSTVWXYZ"


@dataclass(frozen=True, slots=True)
class IdSpec:
    """One identifier: a body drawn at random, then a check tail of `tail` characters from `alphabet`."""

    kind: str
    module: str  # stdnum module ("" for the NINO)
    region: str
    label: str  # the key or column an app names it by
    body: Callable[[random.Random], str]
    tail: int = 1
    alphabet: str = D
    decoy_body: Callable[[random.Random], str] | None = None  # a body no tail makes valid (no-checksum ids)


SPECS = [
    IdSpec("nino", "", "GB", "ni_number", lambda r: _n(r, 2, U) + _n(r, 6), 1, "ABCD", lambda r: "ZZ" + _n(r, 6)),
    IdSpec("nhs", "gb.nhs", "GB", "nhs_number", lambda r: _n(r, 9)),
    IdSpec(
        "fr_nir",
        "fr.nir",
        "FR",
        "nir",
        lambda r: r.choice("12") + _yymmdd(r)[:4] + f"{r.randint(1, 95):02d}" + _n(r, 6),
        2,
    ),
    IdSpec("es_dni", "es.dni", "ES", "dni", lambda r: _n(r, 8), 1, U),
    IdSpec("es_nie", "es.nie", "ES", "nie", lambda r: r.choice("XYZ") + _n(r, 7), 1, U),
    IdSpec("es_cif", "es.cif", "ES", "cif", lambda r: r.choice("ABCDEFGHJNPQRSUVW") + _n(r, 7), 1, D + "ABCDEFGHIJ"),
    IdSpec(
        "it_codice_fiscale",
        "it.codicefiscale",
        "IT",
        "codice_fiscale",
        lambda r: (
            _n(r, 6, _CONSONANTS)
            + _n(r, 2)
            + r.choice(_CF_MONTHS)
            + f"{r.randint(1, 28) + r.choice([0, 40]):02d}"
            + r.choice("ABCDEFGHILM")
            + _n(r, 3)
        ),
        1,
        U,
    ),
    IdSpec("de_steuer_id", "de.idnr", "DE", "steuer_id", lambda r: r.choice("123456789") + _n(r, 9)),
    IdSpec("nl_bsn", "nl.bsn", "NL", "bsn", lambda r: r.choice("123456789") + _n(r, 7)),
    IdSpec("be_nn", "be.nn", "BE", "rijksregisternummer", lambda r: _yymmdd(r) + _n(r, 3), 2),
    IdSpec("pl_pesel", "pl.pesel", "PL", "pesel", lambda r: _yymmdd(r) + _n(r, 4)),
    IdSpec("se_personnummer", "se.personnummer", "SE", "personnummer", lambda r: _yymmdd(r) + "-" + _n(r, 3)),
    IdSpec("dk_cpr", "dk.cpr", "DK", "cpr", lambda r: _ddmmyy(r) + _n(r, 4), 0, D, lambda r: "32" + _n(r, 8)),
    IdSpec(
        "fi_hetu",
        "fi.hetu",
        "FI",
        "henkilotunnus",
        lambda r: _ddmmyy(r) + "-" + _n(r, 3),
        1,
        D + "ABCDEFHJKLMNPRSTUVWXY",
    ),
    IdSpec("no_fodselsnummer", "no.fodselsnummer", "NO", "fodselsnummer", lambda r: _ddmmyy(r) + _n(r, 3), 2),
    IdSpec("tr_tckn", "tr.tckimlik", "TR", "tc_kimlik_no", lambda r: r.choice("123456789") + _n(r, 8), 2),
    IdSpec("br_cpf", "br.cpf", "BR", "cpf", lambda r: _n(r, 9), 2),
    IdSpec("br_cnpj", "br.cnpj", "BR", "cnpj", lambda r: _n(r, 8) + "0001", 2),
    IdSpec(
        "mx_curp",
        "mx.curp",
        "MX",
        "curp",
        lambda r: (
            r.choice(_CONSONANTS)
            + r.choice("AEIOU")
            + _n(r, 2, _CONSONANTS)
            + _yymmdd(r)
            + r.choice("HM")
            + r.choice(_CURP_STATES)
            + _n(r, 3, _CONSONANTS)
            + r.choice(D)
        ),
    ),
    IdSpec("in_aadhaar", "in_.aadhaar", "IN", "aadhaar", lambda r: r.choice("23456789") + _n(r, 10)),
    IdSpec(
        "in_pan",
        "in_.pan",
        "IN",
        "pan",
        lambda r: _n(r, 3, U) + "P" + _n(r, 1, U) + _n(r, 4),
        1,
        U,
        lambda r: _n(r, 3, U) + "X" + _n(r, 1, U) + _n(r, 4),
    ),
    IdSpec(
        "cn_ric",
        "cn.ric",
        "CN",
        "shenfenzheng",
        lambda r: r.choice(_CN_AREAS) + _born(r).strftime("%Y%m%d") + _n(r, 3),
        1,
        D + "X",
    ),
    IdSpec("jp_my_number", "jp.in_", "JP", "my_number", lambda r: _n(r, 11)),
    IdSpec("kr_rrn", "kr.rrn", "KR", "rrn", lambda r: _yymmdd(r) + r.choice("12") + _n(r, 5)),
    IdSpec("au_tfn", "au.tfn", "AU", "tfn", lambda r: _n(r, 8)),
    IdSpec("ca_sin", "ca.sin", "CA", "sin", lambda r: r.choice("1234567") + _n(r, 7)),
    IdSpec(
        "us_ssn",
        "us.ssn",
        "US",
        "ssn",
        lambda r: (
            f"{r.choice([r.randint(1, 665), r.randint(667, 899)]):03d}{r.randint(1, 99):02d}{r.randint(1, 9999):04d}"
        ),
        0,
        D,
        lambda r: r.choice(["000", "666", "9" + _n(r, 2)]) + _n(r, 6),
    ),
    IdSpec(
        "us_itin",
        "us.itin",
        "US",
        "itin",
        lambda r: "9" + _n(r, 2) + str(r.choice([*range(70, 89), 90, 91, 92, *range(94, 100)])) + _n(r, 4),
        0,
        D,
        lambda r: "9" + _n(r, 2) + f"{r.randint(0, 49):02d}" + _n(r, 4),
    ),
    IdSpec("za_id", "za.idnr", "ZA", "id_number", lambda r: _yymmdd(r) + _n(r, 4) + r.choice("01") + "8"),
]


def _module(spec: IdSpec) -> Any:
    return _Nino if not spec.module else importlib.import_module("stdnum." + spec.module)


def draw(spec: IdSpec, rng: random.Random, valid: bool) -> str | None:
    """A compact identifier of this kind that stdnum accepts (or, with valid=False, rejects by its check)."""
    mod = _module(spec)
    for _ in range(400):
        if not valid and spec.decoy_body is not None:
            body = spec.decoy_body(rng)
            tails = ["".join(t) for t in itertools.product(spec.alphabet, repeat=spec.tail)]
            found = [body + t for t in tails if not mod.is_valid(body + t)]
            if found:
                return rng.choice(found)
            continue
        body = spec.body(rng)
        tails = ["".join(t) for t in itertools.product(spec.alphabet, repeat=spec.tail)]
        good = [t for t in tails if mod.is_valid(body + t)]
        bad = [t for t in tails if not mod.is_valid(body + t)]
        if good and (valid or bad):
            return body + rng.choice(good if valid else bad)
    return None


def written(spec: IdSpec, compact: str, rng: random.Random) -> str:
    """The identifier as an app would write it: the module's format, compact, or with spaces for separators."""
    mod = _module(spec)
    formatted = mod.format(compact) if hasattr(mod, "format") else compact
    style = rng.choice(["format", "format", "compact", "spaces"])
    if style == "compact":
        return compact
    if style == "spaces" and re.search(r"[-./]", formatted):
        return re.sub(r"[-./]", " ", formatted)
    return str(formatted)


def values(seed: int, per_kind: int = 8, decoys_per_kind: int = 4) -> Iterator[Value]:
    """`per_kind` valid identifiers and `decoys_per_kind` checksum-broken ones for every spec."""
    for spec in SPECS:
        rng = sub_rng(seed, "id:" + spec.kind)
        for index in range(per_kind + decoys_per_kind):
            valid = index < per_kind
            compact = draw(spec, rng, valid)
            if compact is None:
                continue
            text = written(spec, compact, rng)
            kind = spec.kind if valid else "invalid_" + spec.kind
            # Digit-only forms look like any other number: apps put them next to a label or under a key.
            weak = re.fullmatch(r"[\d ]+", text) is not None
            yield Value(kind, text, spec.region, spec.label, "stdnum", weak=weak, decoy=not valid)
