# ruff: noqa: SIM905  (word lists are written as text: lines of words, split)
"""Street addresses in free text: a house number and a street-type word around the street's name, or whatever
address follows an address label (`address_labelled`).

    123 Main Street, 742 Evergreen Terrace, 221B Baker St.      number, name, type (English)
    12 rue de la Paix, 8 avenue des Champs-Élysées              number, type, name (French)
    Hauptstraße 5, Musterstr. 12a, Berliner Straße 12           name+type, number (German, Dutch, Nordic)
    Calle Mayor 10, Via Roma 1, Rua Augusta 100, ul. Marszałkowska 10     type, name, number

The whole address (street and number) is replaced; a city or postal code after it is not required. The
pattern begins with a class of the characters an address can begin with, and takes the branch of the one it
consumed by a lookbehind: the regex engine skips in C to digits and capitals.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from .base import Detector, Trigger, keyword_trigger
from .names import LETTER, UPPER, UPPER_CHARS, WORD_END

# A word of a street's name: capitalized ("Main", "MAIN"), an ordinal ("5th") or a compass point ("N.").
_NAME_WORD = rf"(?:{UPPER}{LETTER}{{0,25}}(?:['’-]{LETTER}{{1,25}})?|[0-9]{{1,3}}(?:st|nd|rd|th)|[NSEW]\.)"
_PARTICLES = r"(?:(?:de|du|des|de[ ]la|d'|l'|la|le|les|del|di|della|do|da|dos|das)[ ]?)"
_ENGLISH_TYPES = ("street", "avenue", "road", "lane", "drive", "boulevard", "blvd", "terrace", "highway", "parkway",
                  "way", "court", "place", "circle", "square", "crescent", "close", "grove", "gardens", "trail", "park",
                  "mews")  # fmt: skip
# English: an abbreviation ends in a period or comes before a comma or a space, so that the trigger's keywords
# (" st.", " st,", " st ") tell it from the start of a word ("Start").
_ENGLISH = (
    rf"(?:{_NAME_WORD}[ ]){{1,3}}(?i:(?:{'|'.join(_ENGLISH_TYPES)})(?![\w])"
    r"|(?:st|rd|ave|ln|dr)(?:\.|(?=[, ])))"
)
_FRENCH = (
    rf"(?:(?:bis|ter)[ ])?(?i:rue|avenue|boulevard|bd|allée|allee|chemin|impasse)[ ]"
    rf"{_PARTICLES}?{_NAME_WORD}(?:[ -]{_PARTICLES}?{_NAME_WORD}){{0,3}}{WORD_END}"
)
_HOUSE = rf"(?<=[0-9])(?<![,/:#][0-9])[0-9]{{0,4}}[A-Za-z]?(?:[-–][0-9]{{1,5}})?,?[ ](?:{_ENGLISH}|{_FRENCH})"
# Type first (Spanish, Italian, Portuguese, Polish), capitalized: "via" is English.
_LEADING_TYPES = ("Calle", "C/", "Callejón", "Camino", "Pasaje", "Rambla", "Travesía", "Glorieta", "Cuesta",
                  "Avenida", "Avda.", "Paseo", "Plaza", "Via", "Viale", "Piazza", "Vicolo", "Largo", "Corso", "Strada",
                  "Borgo", "Rua", "Travessa", "Praça", "Alameda", "Av.", "Estrada", "Ulica", "Aleja", "ulica",
                  "aleja")  # fmt: skip
_LEADING = (
    "(?:"
    + "|".join(f"(?<={t[0]}){re.escape(t[1:])}" for t in _LEADING_TYPES)
    + r"|(?<=u)(?<=[ \n]u)l\.|(?<=a)(?<=[ \n]a)l\.|(?<=p)(?<=[ \n]p)l\.)"
    + rf"[ ]{_PARTICLES}?{_NAME_WORD}(?:[ ]{_PARTICLES}?{_NAME_WORD}){{0,3}},?[ ]"
    + r"(?:n[º°o.][ ]?)?[0-9]{1,4}[A-Za-z]?(?![\w])"
)
# Name and type in one word ("Hauptstraße", "Jens-Drubin-Straße", "Kalverstraat", "Drottninggatan"), or a
# separate type ("Berliner Straße 12", "Torve Allé 6"). The word is taken whole, then its ending looked at (a
# letter before it: "Platz 1" is a first place, "Marktplatz 1" an address).
_SUFFIXES = ("straße", "strasse", "weg", "gasse", "platz", "allee", "ufer", "straat", "laan", "gracht", "plein",
             "kade", "hof", "singel", "baan", "boulevard", "gatan", "gränd", "vägen", "stigen", "torget", "gade",
             "stræde", "vej", "veien", "vegen", "gata", "katu", "kuja", "polku", "ntie")  # fmt: skip
_SEPARATE_TYPES = ("Straße", "Strasse", "Str.", "Weg", "Gasse", "Platz", "Allee", "Allé", "Ufer")
_COMPOUND = (
    rf"(?<=[{UPPER_CHARS}])(?:{LETTER}|-(?={UPPER})){{1,60}}+"
    rf"(?:(?i:{'|'.join(f'(?<=(?:{LETTER}|-){s})' for s in _SUFFIXES)}|(?<={LETTER}str)\.)"
    rf"|[ -](?:{'|'.join(re.escape(t) for t in _SEPARATE_TYPES)}))"
    r"[ ]?[0-9]{1,4}(?:[ ]?[a-zA-Z])?(?![\w])"
)
_FIRST = rf"[0-9uap{UPPER_CHARS}]"
_ADDRESS = re.compile(rf"{_FIRST}(?<![\w.-]{_FIRST})(?:{_HOUSE}|{_LEADING}|{_COMPOUND})")

# Each address holds one. Parts of words where a part begins with a rarer pair of letters ("aven" for avenue
# and avenida, "aße" for straße): the trigger's scan of every string then looks at them less often.
KEYWORDS = (
    "street", "aven", "road", "lane", "drive", "ulevard", "blvd", "rrace", "ghway", "rkway", " way", "court",
    " place", "circle", "square", "crescent", " close", "grove", "gardens", "trail", " park", "mews",
    *(f" {abbreviation}{end}" for abbreviation in ("st", "rd", "ave", "ln", "dr") for end in ".,"),
    *(f" {abbreviation} " for abbreviation in ("st", "rd", "ave", "ln", "dr")),
    " rue ", " bd ", "allée", "llee", "chemin", "mpasse",
    "calle", "c/ ", "camino", "pasaje", "rambla", "travesía", "glorieta", "cuesta", "avda.", "paseo", "plaza", "via ",
    "viale", "piazza", "vicolo", "largo", "corso", "strada", "borgo", "rua ", "avessa", "praça",
    "ameda", "av.", "estrada", "ulica", "aleja", " ul.", "\nul.", " al.", "\nal.", " pl.", "\npl.",
    "aße", "strasse", "str.", "weg", "gasse", "platz", "ufer", "raat", "laan", "gracht", "plein", "kade", "gatan",
    "gränd", "vägen", "stigen", "torget", "gade", "stræde", "vej", "veien", "vegen", "gata", "katu", "kuja",
    "polku", "ntie", "hof", "singel", "baan", "allé",
)  # fmt: skip
# First words of "2 Google Drive", "3 Shared Drive", "1 Hard Drive": storage, not streets.
_NOT_STREETS = frozenset(
    "google shared hard network usb external local flash disk cloud team my your the a an test virtual mapped "
    "removable system data backup optical logical physical ssd hdd one to of and or in on at for".split()
)
_FIRST_WORD = re.compile(r"[0-9]{1,5}[A-Za-z]?(?:[-–][0-9]{1,5})?,?[ ](\S+)")


def _validator(fires: Callable[[str], bool]) -> Callable[[str], bool]:
    def validate(text: str) -> bool:
        # `re` folds a little more than the trigger ("ſt" is "st"): such a match would never be woken. A keyword
        # may hold the character before (" ul.") or after (" st,") the match.
        if not fires(f" {text} "):
            return False
        first = _FIRST_WORD.match(text)
        return first is None or first.group(1).casefold() not in _NOT_STREETS

    return validate


# --- whatever follows an address label ("invalid address 2599 Margaret Burg Suite 532, Williamside, NC") ---

# The label in the main languages (not after "ip", "mac" or "e-mail": those are other addresses).
_LABEL_WORDS = ("address", "adres", "anschrift", "direccion", "dirección", "indirizzo", "endereco", "endereço",
                "osoite", "住所", "地址", "주소", "पता")  # fmt: skip
_LABELLED = re.compile(
    r"(?<![\w])(?<!ip[ _-])(?<!mac[ _-])(?<!mail[ _-])(?<!email)"
    r"(?:address|adres(?:se|a)?|anschrift|direcci[oó]n|indirizzo|endere[cç]o|osoite|住所|地址|주소|पता)"
    r"(?:[ _-]?line[ _-]?[0-9])?(?![^\W\d_])(?P<sep>[\]\"')]{0,2}[ \t]{0,3}[:=\uff1a]?[ \t]{0,3}[\"']?)"
    # to the end of the clause: a quote, a semicolon, a line break or a bracket
    r"(?P<secret>[^\s;\"'\[\]{}][^;\n\r\"'\[\]{}]{5,149})",
    re.IGNORECASE,
)
# A lowercase street type may begin an address ("ul. Wałowa 34", "plac Brzechwy 985", "rue de la Paix 12").
_LOWER_START = re.compile(r"(?:ul|al|pl|plac|rue|avenue|via|calle|rua|ulica|aleja|os|av)[. ]")
# What begins a memory address, an IP or a host:port (URLs and e-mail addresses anywhere: address_like).
_NOT_ADDRESS = re.compile(r"0x[0-9a-f]|[0-9]{1,3}\.[0-9]{1,3}\.|[\w.-]+:[0-9]{2,5}\b", re.IGNORECASE)


_NUMBER = re.compile(r"(?<![A-Za-z])[0-9]")  # a house number or postcode: not the 6 of "IPv6"


def address_like(value: str) -> bool:
    """After an address label: a street and a number (a space, a digit and a letter), beginning as an address
    does (a number, a capital, a street type, another script), not a host, IP, memory address or e-mail."""
    value = value.strip()
    first = value[:1]
    return (
        " " in value
        and _NUMBER.search(value) is not None
        and any(ch.isalpha() for ch in value)
        and (first.isdigit() or first.isupper() or (first.isalpha() and not first.isascii())
             or _LOWER_START.match(value) is not None)
        and _NOT_ADDRESS.match(value) is None
        and "://" not in value
        and "@" not in value
    )  # fmt: skip


def _labelled_valid(text: str) -> bool:
    found = _LABELLED.fullmatch(text)
    if found is None or not _label_fires(text) or not address_like(found.group("secret")):
        return False
    # "Address Issue 2251": a capitalized label with nothing but a space after it may be a verb
    return found.group("sep").strip() != "" or not text[:1].isupper()


TRIGGERS: dict[str, Trigger] = {
    "street_address": Trigger(keywords=KEYWORDS),
    "address_label": Trigger(keywords=_LABEL_WORDS),
}
_label_fires = keyword_trigger(TRIGGERS["address_label"])
DETECTORS: tuple[Detector, ...] = (
    Detector("street_address", "[address]", _ADDRESS, lambda t: True,
             _validator(keyword_trigger(TRIGGERS["street_address"])), "street_address"),
    Detector("address_labelled", "[address]", _LABELLED, lambda t: True, _labelled_valid, "address_label"),
)  # fmt: skip
