"""The user's own identity, found once and scrubbed everywhere.

An event names its user in a few well-known places: `user.name`, `user.username`, and keys like
`first_name`, `last_name` or `display_name` in request data, `extra`, contexts and log attributes. Those
keys (`scrub.identity_keys`) become key rules of their own, appended after the packs' rules: the walk
replaces the values where they are, as it does for any key rule, and notes them as found, so the Propagator
replaces them wherever else they occur (a message, a breadcrumb, a frame variable). A name found so also gives
its parts ("Anna Schmidt" -> "Anna", "Schmidt"), and short values (`user.name: "Anna"`) are taken from `user`
before the walk; both are replaced only as whole words, so "Anna" doesn't take a bite out of "Annabelle".
(E-mail addresses need none of this: the e-mail detector finds every one.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import regex
import yaml

from ..rules.keys import normalize_key
from ..rules.loader import parse_pack
from ..rules.model import Rule
from .meta import PLACEHOLDER

# Normalized key names (see rules.keys.normalize_key); `scrub.identity_keys` replaces them.
DEFAULT_KEYS = (
    "username", "fullname", "firstname", "lastname", "surname", "familyname", "givenname", "middlename",
    "displayname", "nickname", "userlogin", "customername", "contactname", "holdername",
    "cardholder", "cardholdername", "accountholder", "recipientname", "sendername", "vorname", "nachname",
    "prenom", "prénom", "apellido", "apellidos", "cognome", "sobrenome", "achternaam", "voornaam", "imie", "imię",
    "nazwisko", "soyad", "fornavn", "efternavn", "etternavn", "förnamn", "efternamn", "etunimi", "sukunimi",
)  # fmt: skip
_MIN_PART = 3  # shorter name parts ("Al", "Li") are too common to replace on their own
_MAX_VALUE = 256  # longer values aren't a name
_NAME = re.compile(r"[^\W\d_][\w.'’ -]{0,127}")  # a name or a user name: letters first, no punctuation
_WORD_PART = re.compile(r"[^\W\d_](?:[^\W\d_]|['’-](?=[^\W\d_]))+")
# Name parts that are ordinary words: never replaced on their own.
_COMMON = frozenset(
    ("the", "and", "von", "van", "der", "den", "del", "della", "de", "di", "da", "le", "la", "les", "mr", "mrs",
     "ms", "dr", "prof", "admin", "user", "test", "guest", "root", "null", "none", "unknown", "anonymous", "system",
     "service", "bot", "api", "dev")
)  # fmt: skip


# The rules that replace identity values where they are (their ids are what `_meta` and the audit show).
RULE_ID = "pii.identity"
USER_RULE_ID = "pii.identity_user"
# Name rules whose values give their parts: the identity rule, and the pii pack's name keys.
NAME_RULES = frozenset({RULE_ID, "pii.name_fields"})


@lru_cache(maxsize=64)
def rules(keys: tuple[str, ...]) -> tuple[Rule, ...]:
    """The key rules of the identity keys (normalized): user names and logins become "[user]", the rest "[name]";
    `user.username` and `user.name` always count (a bare `name` only under `user`: contexts.os.name is "Linux")."""
    users = [k for k in keys if "user" in k or "login" in k or "nick" in k]
    names = [k for k in keys if k not in users]
    raw: list[dict[str, Any]] = [
        {
            "id": USER_RULE_ID,
            "description": "The user's user name or login (scrub.identity_keys), and `user.username`.",
            "keys": [regex.escape(k) for k in dict.fromkeys([*users, "username"])],
            "with": "[user]",
        },
        {"id": f"{RULE_ID}.user_name", "description": "`user.name`.", "keys": ["name"], "selectors": ["user"],
         "with": "[name]"},
    ]  # fmt: skip
    if names:
        raw.insert(
            1,
            {
                "id": RULE_ID,
                "description": "The user's name (scrub.identity_keys), and `user.name`.",
                "keys": [regex.escape(k) for k in names],
                "with": "[name]",
            },
        )
    pack = yaml.safe_dump({"pack": "identity", "description": "scrub.identity_keys", "rules": raw}, allow_unicode=True)
    return parse_pack(pack, "scrub.identity_keys", default_name="identity").rules


class Identity:
    """Identity values for the Propagator: value -> (replacement, rule id, remark type), and which of them are
    replaced only as whole words."""

    __slots__ = ("bounded", "found")

    def __init__(self) -> None:
        self.found: dict[str, tuple[str, str, str]] = {}
        self.bounded: set[str] = set()

    def add(self, value: str, replacement: str, rule_id: str) -> None:
        """Note one identity value (stripped of quotes and blanks), and its name parts."""
        value = value.strip().strip("'\"")
        if len(value) > _MAX_VALUE or value.lower() in _COMMON or PLACEHOLDER.search(value) or "@" in value:
            return
        if not _NAME.fullmatch(value):
            return  # not a name or a user name (a template, a sentence, something already scrubbed)
        if len(value) >= _MIN_PART:
            self.found.setdefault(value, (replacement, rule_id, "s"))
            if len(value) < 6 or value.isalpha():
                self.bounded.add(value)
        if replacement != "[name]":
            return
        for part in _WORD_PART.findall(value):
            if len(part) >= _MIN_PART and part.lower() not in _COMMON and part[0].isupper():
                self.found.setdefault(part, ("[name]", rule_id, "s"))
                self.bounded.add(part)


def from_user(event: dict[str, Any], enabled: bool) -> Identity:
    """`user.name` and `user.username` (short ones too, which the walk's found values leave out)."""
    identity = Identity()
    user = event.get("user")
    if enabled and isinstance(user, dict):
        for key, rule_id, replacement in (("name", RULE_ID, "[name]"), ("username", USER_RULE_ID, "[user]")):
            value = user.get(key)
            if type(value) is str:
                identity.add(value, replacement, rule_id)
    return identity


def add_found(identity: Identity, found: dict[str, tuple[str, str, str]]) -> None:
    """The name parts of the names the walk found under name keys (whole values already propagate)."""
    for value, (replacement, rule_id, _) in list(found.items()):
        if rule_id in NAME_RULES or rule_id == USER_RULE_ID or rule_id.startswith(RULE_ID):
            identity.add(value, replacement, rule_id)


def normalized_keys(keys: Iterable[str]) -> tuple[str, ...]:
    """Configured key names, normalized as key rules compare them."""
    return tuple(dict.fromkeys(normalize_key(k) for k in keys))


__all__ = ["DEFAULT_KEYS", "RULE_ID", "Identity", "add_found", "from_user", "normalized_keys", "rules"]
