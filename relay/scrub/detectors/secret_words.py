"""Passwords named in other languages, in `key=value` and `key: value` text and in JSON inside strings.

The built-in `key_value_secret` knows the English words (and `passwort`, `passord`, `mot_de_passe`, which
begin with "pass"). These are the words for "password" that don't: their family is woken by the words
themselves. Key names (`{"senha": ...}`) are the key rule's business (secrets.sensitive_keys).
"""

from __future__ import annotations

import re

from .base import Detector, Trigger, contains

# Lower case, as the keyword trigger compares them (fold=True); the regex below spells each one.
WORDS = (
    "contrase",  # contraseña, contrasena
    "senha",
    "hasło",
    "haslo",
    "şifre",
    "sifre",
    "wachtwoord",
    "parola",
    "lösenord",
    "losenord",
    "adgangskode",
    "salasana",
    "heslo",
    "jelsz",  # jelszó, jelszo
    "lozinka",
    "geslo",
    "kennwort",
    "пароль",
    "парола",
    "лозинка",
    "κωδικ",  # κωδικός
    "パスワード",
    "密码",
    "密碼",
    "비밀번호",
    "mật khẩu",
    "mat_khau",
    "kata sandi",
    "katasandi",
    "पासवर्ड",
)

_WORD = (
    r"contrase(?:ñ|n|nh)a|senha|has[łl]o|[şs]ifre(?:si)?|wachtwoord|parola|l[öo]senord|adgangskode|salasana|heslo|"
    r"jelsz[óo]|lozinka|geslo|kennwort|пароль|парола|лозинка|κωδικός|κωδικος|パスワード|密码|密碼|비밀번호|"
    r"m[ậa]t[ _]?kh[ẩa]u|kata[ _]?sandi|पासवर्ड"
)
_SUFFIX = r"(?:[_-]?(?:confirmation|confirm|again|repeat|new|old|\d{1,2}))?"

DETECTORS = (
    Detector(
        "key_value_secret_intl",
        "[Filtered]",
        re.compile(
            rf"(?<![^\W\d_])(?:{_WORD}){_SUFFIX}[\"']?\s*[=:：]\s*[\"']?"
            r"(?!\[(?:[a-z_]+|Filtered)\]|%[sdr(]|\{)(?P<secret>[^\s&\"',;)}\]]{3,})",
            re.IGNORECASE,
        ),
        contains("=", ":", "："),
        family="secret_words_intl",
    ),
)

TRIGGERS = {"secret_words_intl": Trigger(keywords=WORDS)}
