"""Regenerate relay/scrub/detectors/given_names.txt: common given names across locales, from Faker's providers.

    pip install faker && python bench/tools/make_given_names.py

A name is kept when Faker lists it for one of the locales below (the detectors that use the list want a
surname after the name, or a label, so a longer list costs little precision); a name of only one locale's
long list must also not be a word the standard library writes in lower case. Names that are also common
words or places are dropped, since a
capitalized "Mark", "May", "Page" or "Jordan" in an error message is rarely a person: words from Faker's
lorem word lists, words written in lower case in Python's own documentation (pydoc_data), Faker's country
names, and a few names of software. Only Latin, Greek and Cyrillic names are kept: the detectors that use
the list need a capital letter.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import re
import sysconfig
import warnings
from pathlib import Path

from faker import Faker

OUT = Path(__file__).resolve().parents[2] / "relay" / "scrub" / "detectors" / "given_names.txt"

LOCALES = (  # noqa: SIM905
    "en en_GB en_US en_IE en_NZ en_IN de_DE de_AT de_CH fr_FR fr_BE fr_CA es_ES es_MX es_AR es_CO es_CL it_IT "
    "nl_NL nl_BE pl_PL pt_BR pt_PT sv_SE da_DK no_NO fi_FI tr_TR cs_CZ sk_SK ro_RO hu_HU hr_HR sl_SI ru_RU uk_UA "
    "bg_BG el_GR lt_LT lv_LV et_EE id_ID az_AZ ga_IE is_IS fil_PH vi_VN"
).split()
# Locales whose lists are short lists of popular names.
CORE = {"en_US", "en_GB", "de_AT", "fr_FR", "it_IT", "nl_NL", "pl_PL", "pt_BR", "pt_PT", "es_MX", "da_DK", "no_NO",
        "fi_FI", "cs_CZ", "hu_HU", "ru_RU", "uk_UA"}  # fmt: skip
# English words only: logs and error messages are mostly English, and other languages' lorem lists (taken
# from real texts) hold given names ("john" in Czech, "tom" in Danish).
LOREM = ("en_US",)
# Names that are also English words, and names of software and services, that show up capitalized in error
# messages and logs.
EXCLUDED = {
    "Mark", "June", "April", "August", "Frank", "Grace", "Joy", "Hope", "Faith", "Summer", "Autumn", "Dawn",
    "Crystal", "Amber", "Holly", "Heather", "Olive", "Violet", "Hazel", "Pearl", "Ginger", "Honey", "Penny",
    "Rose", "Lily", "Daisy", "Angel", "Destiny", "Trinity", "Harmony", "Melody", "Liberty", "Justice", "Hunter",
    "Mason", "Carter", "Cooper", "Taylor", "Parker", "Porter", "Tucker", "Walker", "Lane", "Miles", "Rich", "Guy",
    "Art", "Drew", "Pat", "Sue", "Don", "Bill", "Will", "Max", "Jack", "Nick", "Ray", "Dean", "Earl", "Duke",
    "King", "Prince", "Major", "Glen", "Dale", "Clay", "Cliff", "Forest", "Reed", "Sky", "River", "Storm",
    "Rain", "Star", "Sunny", "Cash", "Price", "Page", "Baker", "Bishop", "Deacon", "Archer", "Norma", "Else",
    "Line", "Floor", "Job", "Lot", "Per", "Sole", "Roman", "Diamond", "Odd", "Sys", "Sep", "Lone",
    "Ada", "Alexa", "Athena", "Aurora", "Cassandra", "Celery", "Chase", "Claude", "Django", "Gemini", "Jasmine",
    "Julia", "Karma", "Mocha", "Mollie", "Nova", "Pascal", "Phoenix", "Ruby", "Siri", "Travis", "Victoria",
    "Sage", "Jenkins", "Hermes", "Apollo", "Atlas", "Hugo", "Jade", "Maven", "Tomcat", "Swift", "Dart", "Elixir",
    "Neptune", "Mercury", "Iris", "Ivy", "Flora", "Luna", "Stella", "Vera", "Server", "Tea", "Tera",
}  # fmt: skip
_NAME = re.compile(r"[^\W\d_]{3,20}(?:-[^\W\d_]{2,20})?")
_SCRIPTS = re.compile(r"[A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff\u1e00-\u1fff-]+")
_WORD = re.compile(r"[^\W\d_]{3,}")
# A word in lower case in prose: not a part of an address, a user name or an identifier ("brian@sweetapp.com").
_PROSE_WORD = re.compile(r"(?<![\w@.:/-])[a-z]{3,}(?![\w@/-]|\.\w)")


def first_names(locale: str) -> set[str]:
    """Every given name Faker's person provider has for `locale`."""
    faker = Faker(locale)
    provider = next(p for p in faker.get_providers() if p.__module__.startswith("faker.providers.person"))
    names: set[str] = set()
    for attribute in ("first_names", "first_names_male", "first_names_female", "first_names_nonbinary"):
        names.update(getattr(provider, attribute, None) or ())
    return {n for n in names if _NAME.fullmatch(n) and _SCRIPTS.fullmatch(n) and n == _titled(n)}


def _titled(name: str) -> str:
    return "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))


def common_words() -> set[str]:
    """Lower-case words of the lorem lists and of Python's documentation."""
    words: set[str] = set()
    for locale in LOREM:
        module = importlib.import_module(f"faker.providers.lorem.{locale}")
        words.update(w.lower() for w in module.Provider.word_list)
    from pydoc_data.topics import topics

    for text in topics.values():
        words.update(w for w in _WORD.findall(text) if w.islower())
    return words


def prose_words() -> set[str]:
    """The words written in lower case five times or more in the prose of the standard library's own source,
    tests and vendored packages aside (its docstrings, comments and messages: "server", "term")."""
    seen: collections.Counter[str] = collections.Counter()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in stdlib.rglob("*.py"):
        if {"test", "tests", "idlelib", "site-packages", "lib2to3"} & set(path.relative_to(stdlib).parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        seen.update(_PROSE_WORD.findall(text))
    return {w for w, n in seen.items() if n >= 5}


def countries() -> set[str]:
    """Country names (English)."""
    module = importlib.import_module("faker.providers.address.en_US")
    return {c for c in module.Provider.countries if " " not in c}


def build() -> list[str]:
    """The sorted list of names."""
    counts: collections.Counter[str] = collections.Counter()
    common: set[str] = set()  # in two locales, or a core one's short list of popular names
    for locale in LOCALES:
        names = first_names(locale)
        counts.update(names)
        if locale in CORE:
            common |= names
    common |= {name for name, count in counts.items() if count >= 2}
    drop, prose, places = common_words(), prose_words(), countries()
    # The long tail (a name of one locale's long list) must also not be a word of the standard library's prose.
    return sorted(
        n
        for n in counts
        if n.lower() not in drop and n not in places and n not in EXCLUDED and (n in common or n.lower() not in prose)
    )


def main() -> None:
    """Write the list."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated locales
        names = build()
    header = (
        "# Common given names across locales (Faker's person providers), less common words, countries and\n"
        "# software names. Generated by bench/tools/make_given_names.py: edit that, not this.\n"
    )
    args.out.write_text(header + "\n".join(names) + "\n", encoding="utf-8")
    print(f"wrote {len(names)} names to {args.out}")


if __name__ == "__main__":
    main()
