"""The first built-in detectors (e-mail, cards, IBAN, SSN, phone, IP, MAC, IMEI, home paths, common secrets), and
the seven families whose triggers, starts and windows the C parts know by heart (_triggers.h, _scans.c).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from .. import validators as v
from . import phones
from .base import Detector, contains, has_digits


def _ipv4_ok(text: str) -> bool:
    return v.ipv4_public_or_private(text)


_I = re.IGNORECASE

# Words that name secrets in key=value text and query strings.
SECRET_WORDS = (
    r"pass(?:word|wd|phrase|wort|ord|code|e)?(?:[_-]?(?:confirmation|confirm|again|repeat|new|old|\d{1,2}))?|pwd|secret|client[_-]?secret|token|access[_-]?token|refresh[_-]?token|id[_-]?token|"
    r"auth[_-]?token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key|session[_-]?id|sessionid|"
    r"session|sid|csrf[_-]?token|xsrf[_-]?token|auth|authorization|credentials?|signature|sig|x-amz-signature|"
    r"x-amz-credential|(?<=[?&;])key"
)

DETECTORS: dict[str, Detector] = {}


def _add(detector: Detector) -> None:
    DETECTORS[detector.name] = detector


# --- personal data ------------------------------------------------------------------

_add(Detector(
    "email", "[email]",
    # Unicode local parts and domains (IDN), punycode TLDs: "josé.müller@bücher.de", "a@xn--bcher-kva.example"
    # (with the combining vowel signs of Indic and Southeast Asian scripts, which `\w` leaves out: चतुर्वेदी.org)
    re.compile(
        r"(?<![\w.%+\]-])[^\W_][\w\u0900-\u0dff\u0e31-\u0e4e.%+-]{0,63}@"
        r"(?:[^\W_][\w\u0900-\u0dff\u0e31-\u0e4e-]{0,62}\.)+(?:[^\W\d_](?:[^\W\d_]|[\u0900-\u0dff]){1,23}|xn--[a-z0-9-]{2,59})(?![\w-])"
    ),
    contains("@"),
))  # fmt: skip
_add(Detector(
    "credit_card", "[creditcard]",
    re.compile(r"(?<![\w.\]-])\d(?:[ -]?\d){11,18}(?![\w-]|\.\d)"),
    has_digits(12), v.credit_card_valid,
))  # fmt: skip
_add(Detector(
    "iban", "[iban]",
    re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])"),
    has_digits(4), v.iban_valid,
))  # fmt: skip
_add(Detector(
    "us_ssn", "[ssn]",
    re.compile(r"(?<![\d\]-])\d{3}(?P<sep>[- ])\d{2}(?P=sep)\d{4}(?![\d-])"),
    has_digits(9), v.ssn_valid,
))  # fmt: skip
_add(Detector(
    "phone", "[phone]",
    re.compile(rf"(?:{phones.PATTERN})(?![\w:/-]|\.\d)"),
    has_digits(7), phones.validator(v.phone_valid), cut=phones.international,
))  # fmt: skip
_add(Detector(
    "ipv4", "[ip]",
    re.compile(r"(?<![\w.:\]-])(?<!\bv)(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w.-]|\.\d)"),
    has_digits(4), _ipv4_ok,
))  # fmt: skip
_add(Detector(
    "ipv6", "[ip]",
    re.compile(r"(?<![\w:.\]])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?:%[\w.]+)?(?![\w:])"),
    contains(":"), v.ipv6_valid,
))  # fmt: skip
_add(Detector(
    "mac", "[mac]",
    re.compile(
        r"(?<![\w:.\]-])(?:[0-9A-Fa-f]{2}(?P<sep>[:-])(?:[0-9A-Fa-f]{2}(?P=sep)){4}[0-9A-Fa-f]{2}"
        r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![\w:.-])"  # and Cisco's a446.15f0.a6cc
    ),
    contains(":", "-", "."), v.mac_valid,
))  # fmt: skip
_add(Detector(
    "imei", "[imei]",
    re.compile(r"(?<![\w\]-])\d{2}[ -]?\d{6}[ -]?\d{6}[ -]?\d(?![\w-])"),
    has_digits(15), v.imei_valid,
))  # fmt: skip
_add(Detector(
    "user_path", "[user]",
    re.compile(
        # /home, /Users, and the same below WSL's /mnt/c, Silverblue's /var/home, /export, /usr, /Volumes/<disk>
        r"(?:(?<![\w])(?:/mnt/[A-Za-z]|/var|/export|/usr|/data|/Volumes/[^/\n]{1,64})?/(?:home|Users)/"
        r"|\b[A-Za-z]:(?:\\{1,2}|/)(?:Users|Documents and Settings)(?:\\{1,2}|/))"
        r"(?!(?:Shared|Public|Default|All Users)\b)"
        r"(?P<secret>[^/\\\s'\"<>:|]+(?: [^/\\\s'\"<>:|]+)*(?=[/\\])|[^/\\\s'\"<>:|]+)"
    ),
    contains("/home/", "/Users/", "Users\\", "Users/", "Settings\\"),
))  # fmt: skip

# --- secrets ------------------------------------------------------------------------------

_add(Detector(
    "auth_header", "[Filtered]",
    # Digest and Negotiate as written in headers: "digest 727b..." in prose is a checksum, not a credential
    re.compile(r"\b(?:Bearer|Basic|Token|(?-i:Digest|Negotiate))\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})", _I),
    contains("earer", "asic", "igest", "oken", "egotiate", "EARER", "ASIC", "IGEST", "OKEN"),
))  # fmt: skip
_add(Detector(
    "url_credentials", "[Filtered]",
    # the whole user part goes (a user name is personal data too), not only the password
    re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://(?P<secret>[^/\s:@]{0,128}:[^/\s@]{1,256})@"),
    contains("://"),
))  # fmt: skip
_add(Detector(
    "key_value_secret", "[Filtered]",
    re.compile(
        rf"(?<![A-Za-z0-9])(?:{SECRET_WORDS})[\"']?\s*[=:]\s*[\"']?(?!\[(?:[a-z_]+|Filtered|hash:[0-9a-f]{{32}})\]|-----|%[sdr(]|\{{|\$\{{|%[A-Za-z_]\w*%|(?-i:\$(?:[A-Z_][A-Z0-9_]*|[a-z_]+|\d+|\{{\d+\}})|@(?:[A-Z_]+|[a-z_]+)@)(?![\w/+=.-])|(?:Bearer|Basic|Digest|Token|Negotiate)\s)"
        rf"(?P<secret>[^\s&\"',;)}}\]]{{3,}})", _I
    ),
    contains("=", ":"),
))  # fmt: skip
_add(Detector(
    "pem_private_key", "[Filtered]",
    # Up to the first END line, or the end: `[\s\S]*?(?:END|$)` written as a possessive loop that
    # stops where that lazy one would (before an END line, at the end or before a final newline), and
    # that the regex engine runs several times faster over a long key body.
    re.compile(
        r"-----BEGIN[A-Z ]{0,30} PRIVATE KEY-----(?:[^-\n]++|-(?!----END[A-Z ]{0,30} PRIVATE KEY-----)|\n(?!\Z))*+"
        r"(?:-----END[A-Z ]{0,30} PRIVATE KEY-----|$)"
    ),
    contains("PRIVATE KEY"),
))  # fmt: skip
_add(Detector(
    "jwt", "[Filtered]",
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    contains("eyJ"),
))  # fmt: skip
_add(Detector(
    "aws_access_key", "[Filtered]",
    re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}\b"),
    contains("A"),
))  # fmt: skip
_add(Detector(
    "aws_secret_key", "[Filtered]",
    re.compile(r"(?i:aws)[\w.-]{0,24}?(?i:secret)[\w.-]{0,24}?[\"']?\s*[=:]\s*[\"']?(?P<secret>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"),
    contains("aws", "AWS", "Aws"),
))  # fmt: skip
_add(Detector(
    "github_token", "[Filtered]",
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b"),
    contains("gh", "github_pat_"),
))  # fmt: skip
_add(Detector(
    "gitlab_token", "[Filtered]",
    re.compile(r"\bgl(?:pat|dt|rt|ptt|ft|imt|agent|oas|cbt|soat)-[A-Za-z0-9_-]{20,}"),
    contains("gl"),
))  # fmt: skip
_add(Detector(
    "slack_token", "[Filtered]",
    re.compile(r"\bxox[abposre]-[A-Za-z0-9-]{10,}|https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}"),
    contains("xox", "hooks.slack.com"),
))  # fmt: skip
_add(Detector(
    "stripe_key", "[Filtered]",
    re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bwhsec_[A-Za-z0-9]{24,}"),
    contains("_live_", "_test_", "whsec_"),
))  # fmt: skip
_add(Detector(
    "google_api_key", "[Filtered]",
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])|\bya29\.[0-9A-Za-z_-]{20,}|\bGOCSPX-[0-9A-Za-z_-]{20,}"),
    contains("AIza", "ya29.", "GOCSPX-"),
))  # fmt: skip
_add(Detector(
    "openai_key", "[Filtered]",
    re.compile(r"\bsk-(?:proj-|svcacct-|admin-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}"),
    contains("sk-"),
))  # fmt: skip


_FAMILIES = {
    "email": "email", "credit_card": "numeric", "us_ssn": "numeric", "phone": "numeric", "ipv4": "numeric",
    "imei": "numeric", "iban": "numeric", "ipv6": "hexsep", "mac": "hexsep", "user_path": "path",
    "url_credentials": "url",
    "auth_header": "words", "key_value_secret": "words", "aws_secret_key": "words", "pem_private_key": "token",
    "jwt": "token", "aws_access_key": "token", "github_token": "token", "gitlab_token": "token",
    "slack_token": "token", "stripe_key": "token", "google_api_key": "token", "openai_key": "token",
}  # fmt: skip
for _name, _family in _FAMILIES.items():
    DETECTORS[_name] = replace(DETECTORS[_name], family=_family)

# The digit validators in C where they were built (validators.compiled): same answers, a tenth of the time.
_COMPILED = v.compiled()
for _name, _validator in {
    "credit_card": "credit_card_valid", "iban": "iban_valid", "us_ssn": "ssn_valid", "imei": "imei_valid",
    "ipv4": "ipv4_public_or_private",
}.items():  # fmt: skip
    if _validator in _COMPILED:
        DETECTORS[_name] = replace(DETECTORS[_name], validate=_COMPILED[_validator])
if "phone_valid" in _COMPILED:  # the C check first, libphonenumber for what it doesn't know
    DETECTORS["phone"] = replace(DETECTORS["phone"], validate=phones.validator(_COMPILED["phone_valid"]))

_NUMERIC_RUN = re.compile(r"\d[\d .()/-]{5,}\d")
# "::" or three hex groups each ending in ":" / five hex pairs each ending in "-". Written to begin with the
# literal separator (the group before it is checked by a lookbehind), so the regex engine jumps from one
# separator to the next in C instead of trying every hex letter of a long text; where they match is the
# same as `::|(?:[0-9A-Fa-f]{1,4}:){3}` and `(?:[0-9A-Fa-f]{2}-){5}` (one character later at most).
_IPV6_LIKE = re.compile(r":(?::|(?<=[0-9A-Fa-f]:)(?:[0-9A-Fa-f]{1,4}:){2})")
_MAC_DASHED = re.compile(r"-(?<=[0-9A-Fa-f]{2}-)(?:[0-9A-Fa-f]{2}-){4}")
_MAC_DOTTED = re.compile(r"\.(?<=[0-9A-Fa-f]{4}\.)[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")
_TOKEN_PREFIX = re.compile(
    r"eyJ|PRIVATE KEY|A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|NPA|NVA|IPA)|gh[pousr]_|github_pat_|gl[a-z]{2,5}-|xox|"
    r"hooks\.slack|_live_|_test_|whsec_|AIza|ya29\.|GOCSPX-|sk-"
)
_SECRET_WORDS_LOWER = ("pass", "pwd", "secret", "token", "key", "auth", "sess", "sid", "csrf", "xsrf", "cred", "sig",
                       "bearer", "basic", "digest", "negotiate", "aws")  # fmt: skip


# One C-level search of the lowercased text instead of a generator over the words (same answer).
_SECRET_WORD = re.compile("|".join(_SECRET_WORDS_LOWER))


def _has_secret_word(text: str) -> bool:
    return _SECRET_WORD.search(text.lower()) is not None


_ALNUM = re.compile(r"[A-Z]{2}[0-9]|[0-9]{7}[A-Z]")
_NINE_DIGITS = re.compile(r"(?:\D*\d){9}")


# Families whose matches always contain a run found by this regex: only those windows are scanned.
def _numeric_run_worth_scanning(text: str, start: int, end: int) -> bool:
    """Could a card, IBAN, SSN, phone, IP or IMEI be here? Dates, times and versions are not."""
    if end - start >= 9 and _NINE_DIGITS.match(text, start, end) is not None:
        return True  # 9 digits or more: cards, IMEIs, IBANs, phones, SSNs
    if (start and text[start - 1] in "+(") or text[start] == "0":  # phones
        return True
    if text.count(".", start, end) == 3:  # IPv4
        return True
    return start >= 2 and text[start - 2 : start].isupper()  # IBAN country code and check digits


WINDOWS: dict[str, tuple[re.Pattern[str], int, int, Callable[[str, int, int], bool]]] = {
    # (run regex, context before, context after, run filter)
    "numeric": (_NUMERIC_RUN, 12, 16, _numeric_run_worth_scanning),
}

# family -> (regex, lowercase?): every match of the family's detectors begins where this regex matches
# (in the lowercased text when the flag is set). Scanning only those places is much cheaper than running
# the family's full alternation at every position, since these literal alternations are searched in C.
STARTS: dict[str, tuple[re.Pattern[str], bool]] = {
    # A digit, "+" or "(" not right after a digit, "]" or "-" (every numeric detector's lookbehind rules
    # those out), or an IBAN's country code. Inside a long digit run only its first digit qualifies, so a
    # rejected order id is not searched again from each of its digits. The character comes first and
    # the lookbehinds after it, so the regex engine skips to candidate characters in C.
    "numeric": (re.compile(r"[\d+(A-Z](?<![\d\]-][\d+(])(?<![A-Za-z0-9][A-Z])"), False),
    # Alternatives of plain literals, grouped by first letter: the engine then skips in C to positions
    # holding one of those letters and tries only a few alternatives there.
    "words": (
        re.compile(
            r"p(?:ass|wd|rivate)|s(?:ecret|ess|id|ig)|c(?:lient|srf|red)|token|a(?:ccess|uth|pi|ws)|refresh|id|"
            r"x(?:srf|-amz)|key|b(?:earer|asic)|digest|negotiate"
        ),
        True,
    ),
    "token": (
        re.compile(
            r"-----BEGIN|eyJ|A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|NPA|NVA|IPA|Iza)|g(?:h[pousr]_|ithub_pat_|l[a-z]{2,5}-)|"
            r"xox|https://hooks|sk[_-]|rk_|whsec_|ya29\.|GOCSPX-"
        ),
        False,
    ),
}

# family -> cheap test on a whole string: False means no detector of the family can match.
TRIGGERS: dict[str, Callable[[str], bool]] = {
    "email": lambda text: "@" in text,
    "numeric": lambda text: _NUMERIC_RUN.search(text) is not None,
    "hexsep": lambda text: (
        (("::" in text or text.count(":") >= 3) and _IPV6_LIKE.search(text) is not None)
        or (text.count("-") >= 5 and _MAC_DASHED.search(text) is not None)
        or (text.count(".") >= 2 and _MAC_DOTTED.search(text) is not None)
    ),
    "path": lambda text: "/home/" in text or "Users" in text or "Settings" in text,
    "url": lambda text: "://" in text,
    "words": _has_secret_word,
    "token": lambda text: _TOKEN_PREFIX.search(text) is not None,
    # identifiers of letters and digits (codice fiscale, CURP, PAN, NINO, NIE, DNI, NRIC): see national.alnum
    "alnum": lambda text: _ALNUM.search(text) is not None,
}
