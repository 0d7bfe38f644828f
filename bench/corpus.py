"""Labeled PII corpus for the scrubbing benchmark, produced by the real sentry-python SDK.

Each event is captured by a live SDK client (in-memory transport) after actually raising an exception
inside generated nested functions whose local variables hold the planted values, or after
`capture_message` / `logging.error`. Scope data (user, tags, extra, contexts, breadcrumbs, request)
carries more planted values and decoys. Every planted value is checked against the payload the SDK
produced: if the SDK repr-quoted it (frame vars) the escaped form is recorded, and values that did not
make it into the payload are dropped.

    python bench/corpus.py --events 1000 --seed 7 --out bench/data/corpus.jsonl

Each JSON line is `{"event": {...}, "planted": [{"kind", "value"}], "decoys": [{"kind", "value"}], ...}`.
The generator imports nothing from `relay`.
"""

from __future__ import annotations

import argparse
import base64
import json
import linecache
import logging
import random
import string
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "bench" / "data" / "corpus.jsonl"

Rng = random.Random

ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
HEX = "0123456789abcdef"

FIRST = [
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "oscar",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
    "priya",
    "jonas",
    "lena",
    "mateo",
    "yuki",
    "chen",
    "fatima",
    "olga",
    "kwame",
    "sofia",
    "liam",
    "noah",
]
LAST = [
    "smith",
    "johnson",
    "garcia",
    "mueller",
    "schmidt",
    "dubois",
    "martin",
    "rossi",
    "kowalski",
    "nguyen",
    "tanaka",
    "okafor",
    "silva",
    "jensen",
    "novak",
    "ivanova",
    "patel",
    "kim",
    "lopez",
    "brown",
]
DOMAINS = [
    "example.com",
    "gmail.com",
    "acme-corp.io",
    "mail.example.co.uk",
    "fastmail.fm",
    "firma.de",
    "outlook.com",
    "shop.example.org",
    "proton.me",
    "uni-heidelberg.de",
]


def _s(rng: Rng, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _digits(rng: Rng, n: int) -> str:
    return _s(rng, string.digits, n)


def _luhn_check_digit(body: str) -> str:
    total = 0
    for index, ch in enumerate(reversed(body)):
        d = int(ch)
        if index % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_ok(number: str) -> bool:
    """The Luhn checksum (for the corpus' own checks)."""
    return _luhn_check_digit(number[:-1]) == number[-1]


# -- planted values -----------------------------------------------------------------------------------------


def gen_email(rng: Rng) -> str:
    first, last, dom = rng.choice(FIRST), rng.choice(LAST), rng.choice(DOMAINS)
    local = rng.choice(
        [
            f"{first}.{last}",
            f"{first[0]}{last}{rng.randint(1, 99)}",
            f"{first}+{rng.choice(['billing', 'test', 'news'])}",
            f"{first}_{last}",
            f"{first.capitalize()}.{last.capitalize()}",
        ]
    )
    return f"{local}@{dom}"


def gen_credit_card(rng: Rng) -> str:
    issuer = rng.choice(["visa", "visa", "mastercard", "mastercard2", "amex", "discover", "jcb", "diners", "unionpay"])
    prefix, length = {
        "visa": ("4", 16),
        "mastercard": (str(rng.randint(51, 55)), 16),
        "mastercard2": (str(rng.randint(2221, 2720)), 16),
        "amex": (rng.choice(["34", "37"]), 15),
        "discover": (rng.choice(["6011", "65"]), 16),
        "jcb": (str(rng.randint(3528, 3589)), 16),
        "diners": ("36", 14),
        "unionpay": ("62", rng.choice([16, 19])),
    }[issuer]
    body = prefix + _digits(rng, length - len(prefix) - 1)
    number = body + _luhn_check_digit(body)
    style = rng.random()
    if style < 0.4:
        return number
    sep = " " if style < 0.75 else "-"
    if length in (14, 15):  # Amex 4-6-5, Diners 4-6-4
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i : i + 4] for i in range(0, length, 4)]
    return sep.join(groups)


_IBAN_BBAN: dict[str, Callable[[Rng], str]] = {
    "DE": lambda r: _digits(r, 18),
    "GB": lambda r: _s(r, string.ascii_uppercase, 4) + _digits(r, 14),
    "FR": lambda r: _digits(r, 10) + _s(r, string.ascii_uppercase + string.digits, 11) + _digits(r, 2),
    "NL": lambda r: _s(r, string.ascii_uppercase, 4) + _digits(r, 10),
    "ES": lambda r: _digits(r, 20),
    "IT": lambda r: (
        r.choice(string.ascii_uppercase) + _digits(r, 10) + _s(r, string.ascii_uppercase + string.digits, 12)
    ),
    "CH": lambda r: _digits(r, 5) + _s(r, string.ascii_uppercase + string.digits, 12),
    "BE": lambda r: _digits(r, 12),
    "AT": lambda r: _digits(r, 16),
    "PL": lambda r: _digits(r, 24),
}


def iban_check(country: str, bban: str) -> str:
    """ISO 7064 mod-97 check digits."""
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"


def gen_iban(rng: Rng) -> str:
    country = rng.choice(sorted(_IBAN_BBAN))
    bban = _IBAN_BBAN[country](rng)
    iban = country + iban_check(country, bban) + bban
    if rng.random() < 0.5:
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def gen_us_ssn(rng: Rng) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    sep = "-" if rng.random() < 0.8 else " "
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


def _nanp(rng: Rng) -> tuple[str, str, str]:
    while True:
        area = f"{rng.randint(2, 9)}{rng.randint(0, 9)}{rng.randint(0, 9)}"
        if area[1:] != "11":
            break
    exchange = f"{rng.randint(2, 9)}{_digits(rng, 2)}"
    return area, exchange, _digits(rng, 4)


def gen_phone(rng: Rng) -> str:
    a, e, s = _nanp(rng)
    formats = [
        lambda: f"+1 {a} {e} {s}",
        lambda: f"+1-{a}-{e}-{s}",
        lambda: f"+1 ({a}) {e}-{s}",
        lambda: f"+1{a}{e}{s}",
        lambda: f"+44 20 {rng.randint(7000, 8999)} {_digits(rng, 4)}",
        lambda: f"+44 7{_digits(rng, 3)} {_digits(rng, 6)}",
        lambda: f"+49 30 {_digits(rng, 8)}",
        lambda: f"+49 1{rng.choice(['51', '60', '70', '76'])} {_digits(rng, 8)}",
        lambda: f"+33 {rng.randint(1, 7)} " + " ".join(_digits(rng, 2) for _ in range(4)),
        lambda: f"({a}) {e}-{s}",
        lambda: f"{a}-{e}-{s}",
        lambda: f"020 {rng.randint(7000, 8999)} {_digits(rng, 4)}",
        lambda: f"01{rng.choice(['51', '60', '76'])} {_digits(rng, 8)}",
        lambda: f"030 {_digits(rng, 8)}",
        lambda: f"0{rng.randint(6, 7)} " + " ".join(_digits(rng, 2) for _ in range(4)),
    ]
    return rng.choice(formats)()


def gen_ipv4(rng: Rng) -> str:
    style = rng.random()
    if style < 0.2:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if style < 0.35:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    first = rng.choice([a for a in range(1, 224) if a not in (10, 127)])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def gen_ipv6(rng: Rng) -> str:
    import ipaddress

    prefix = rng.choice([0x2001_0DB8, 0x2A02_8070, 0x2600_1F18, 0x2406_DA00, 0x2A01_04F8])
    rest = rng.getrandbits(96)
    if rng.random() < 0.5:  # a zero run so that the compressed form has '::'
        rest &= ~(((1 << 48) - 1) << 16)
    addr = ipaddress.IPv6Address((prefix << 96) | rest)
    return addr.compressed if rng.random() < 0.7 else addr.exploded


def gen_mac(rng: Rng) -> str:
    octets = [rng.randint(0, 255) for _ in range(6)]
    octets[0] &= 0xFE
    if not any(octets):
        octets[5] = 1
    sep = rng.choice([":", ":", "-"])
    text = sep.join(f"{o:02x}" for o in octets)
    return text.upper() if rng.random() < 0.4 else text


def gen_imei(rng: Rng) -> str:
    body = rng.choice(["35", "86", "01", "49", "99"]) + _digits(rng, 12)
    number = body + _luhn_check_digit(body)
    if rng.random() < 0.3:
        return f"{number[:2]}-{number[2:8]}-{number[8:14]}-{number[14]}"
    return number


_HOME_NAMES = ["jdoe", "asmith", "m.schmidt", "priya.k", "dev", "kwame", "olga.ivanova", "chen_wei", "lopez-m"]


def gen_user_path(rng: Rng) -> str:
    """The user-identifying part of a home path: '/home/<name>/' (the rest is added where it is placed)."""
    name = rng.choice(_HOME_NAMES) + (str(rng.randint(1, 99)) if rng.random() < 0.5 else "")
    style = rng.random()
    if style < 0.45:
        return f"/home/{name}/"
    if style < 0.75:
        return f"/Users/{name}/"
    if rng.random() < 0.3:
        name = f"{rng.choice(FIRST).capitalize()} {rng.choice(LAST).capitalize()}"
    return f"C:\\Users\\{name}\\"


def _path_tail(rng: Rng, prefix: str) -> str:
    if "\\" in prefix:
        return rng.choice(
            [
                "AppData\\Local\\Temp\\upload_{n}.tmp",
                "Documents\\reports\\q{n}.xlsx",
                "projects\\shop\\settings.ini",
                "Downloads\\invoice_{n}.pdf",
            ]
        ).replace("{n}", str(rng.randint(1, 999)))
    return rng.choice(
        [
            ".config/shop/settings.toml",
            "projects/shop/app/settings.py",
            "Downloads/invoice_{n}.pdf",
            ".aws/credentials",
            "src/worker/tmp/export_{n}.csv",
            ".ssh/id_ed25519",
        ]
    ).replace("{n}", str(rng.randint(1, 999)))


def gen_password(rng: Rng) -> str:
    while True:
        pw = _s(rng, ALNUM + "!$%*-_.+", rng.randint(8, 20))
        if any(c.isdigit() for c in pw) and any(c.isalpha() for c in pw):
            return pw


def gen_url_password(rng: Rng) -> str:
    while True:
        pw = _s(rng, ALNUM + "-._~", rng.randint(10, 24))
        if any(c.isdigit() for c in pw):
            return pw


def gen_aws_key(rng: Rng) -> str:
    return rng.choice(["AKIA", "AKIA", "ASIA"]) + _s(rng, string.ascii_uppercase + "234567", 16)


def gen_aws_secret(rng: Rng) -> str:
    return _s(rng, B64, 40)


def gen_github(rng: Rng) -> str:
    if rng.random() < 0.3:
        return "github_pat_" + _s(rng, ALNUM, 22) + "_" + _s(rng, ALNUM, 59)
    return rng.choice(["ghp_", "ghp_", "gho_", "ghs_"]) + _s(rng, ALNUM, 36)


def gen_gitlab(rng: Rng) -> str:
    return "glpat-" + _s(rng, B64URL, 20)


def gen_slack(rng: Rng) -> str:
    team, user = _digits(rng, rng.randint(11, 13)), _digits(rng, rng.randint(11, 13))
    return f"{rng.choice(['xoxb', 'xoxp'])}-{team}-{user}-{_s(rng, ALNUM, 24)}"


def gen_stripe(rng: Rng) -> str:
    return rng.choice(["sk_live_", "sk_live_", "rk_live_"]) + _s(rng, ALNUM, rng.choice([24, 34, 99]))


def gen_google(rng: Rng) -> str:
    return "AIza" + _s(rng, B64URL, 35)


def gen_openai(rng: Rng) -> str:
    if rng.random() < 0.7:
        return "sk-proj-" + _s(rng, B64URL, rng.randint(64, 120))
    return "sk-" + _s(rng, ALNUM, 48)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def gen_jwt(rng: Rng) -> str:
    header = {"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}
    iat = rng.randint(1_700_000_000, 1_750_000_000)
    payload = {"sub": str(rng.randint(1, 10**6)), "iat": iat, "exp": iat + 3600, "scope": "read write"}
    sig = _s(rng, B64URL, 43 if header["alg"] == "HS256" else 342)
    return f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(payload).encode())}.{sig}"


def gen_bearer(rng: Rng) -> str:
    return _s(rng, ALNUM, rng.randint(24, 40)) + rng.choice(["", "-" + _s(rng, ALNUM, 8), "." + _s(rng, ALNUM, 12)])


def gen_basic(rng: Rng) -> str:
    return base64.b64encode(f"{rng.choice(FIRST)}:{gen_password(rng)}".encode()).decode()


def gen_session(rng: Rng) -> str:
    return _s(rng, HEX if rng.random() < 0.5 else ALNUM, 32)


def gen_pem(rng: Rng) -> str:
    """The base64 body of a private key (placed wrapped in BEGIN/END lines)."""
    lines = [_s(rng, B64, 64) for _ in range(rng.randint(6, 20))]
    lines.append(_s(rng, B64, rng.randint(8, 60)) + rng.choice(["", "=", "=="]))
    return "\n".join(lines)


def _pem_block(rng: Rng, body: str) -> str:
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"])
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"


# -- decoys -------------------------------------------------------------------------------------------------


def gen_uuid(rng: Rng) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _hex_with_letter(rng: Rng, n: int) -> str:
    while True:
        text = _s(rng, HEX, n)
        if any(c in "abcdef" for c in text):
            return text


def gen_git_sha(rng: Rng) -> str:
    return _hex_with_letter(rng, 40)


def gen_hex_id(rng: Rng) -> str:
    return _hex_with_letter(rng, rng.choice([16, 24, 32]))


def gen_semver(rng: Rng) -> str:
    major, minor, patch = rng.randint(0, 12), rng.randint(0, 40), rng.randint(0, 30)
    return rng.choice(
        [
            f"{major}.{minor}.{patch}",
            f"v{major}.{minor}.{patch}",
            f"10.0.{rng.randint(17000, 22631)}.{rng.randint(1, 3000)}",
            f"{major}.{minor}.{patch}-rc.{rng.randint(1, 5)}",
            f"v{major}.{minor}.{patch}.{rng.randint(1, 200)}",
        ]
    )


def _ymd(rng: Rng) -> tuple[int, int, int]:
    return rng.randint(2015, 2026), rng.randint(1, 12), rng.randint(1, 28)


def gen_timestamp(rng: Rng) -> str:
    y, m, d = _ymd(rng)
    hh, mm, ss = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    return rng.choice(
        [
            f"{y}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}Z",
            f"{y}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}.{rng.randint(0, 999999):06d}+00:00",
            f"{y}-{m:02d}-{d:02d} {hh:02d}:{mm:02d}:{ss:02d}",
            f"{y}-{m:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}+02:00",
        ]
    )


def gen_date(rng: Rng) -> str:
    y, m, d = _ymd(rng)
    months = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ]
    return rng.choice(
        [f"{y}-{m:02d}-{d:02d}", f"{d:02d}.{m:02d}.{y}", f"{m:02d}/{d:02d}/{y}", f"{months[m - 1]} {d}, {y}"]
    )


def gen_order_id(rng: Rng) -> str:
    """A 16-digit id with a card-like prefix and a failing Luhn checksum."""
    while True:
        number = rng.choice("3456") + _digits(rng, 15)
        if not luhn_ok(number):
            return number


def gen_sql(rng: Rng) -> str:
    return (
        rng.choice(
            [
                "SELECT id, email FROM users WHERE id = %s",
                "SELECT id FROM users WHERE id = %s AND tenant_id = %s",
                "UPDATE orders SET status = %s, updated_at = %s WHERE id = %s",
                "INSERT INTO audit_log (actor_id, action, created_at) VALUES (%s, %s, %s)",
                "DELETE FROM carts WHERE user_id = $1 AND expires_at < now()",
                "SELECT o.id, o.total FROM orders o JOIN users u ON u.id = o.user_id WHERE u.id = ? LIMIT 50",
            ]
        )
        + f" /* q{rng.randint(100, 999)} */"
    )


def gen_route(rng: Rng) -> str:
    return rng.choice(
        [
            "/api/v1/users/{id}",
            "/api/v2/orders/{order_id}/items",
            "/api/v1/projects/{project_id}/events/",
            "/internal/health",
            "/api/v{version}/invoices/{invoice_id}/pdf",
            "/accounts/<int:pk>/settings/",
            "/api/v1/carts/:cartId/checkout",
        ]
    ) + rng.choice(["", "?page={page}", f"#s{rng.randint(1, 99)}"])


def gen_duration(rng: Rng) -> str:
    return rng.choice(
        [
            f"{rng.randint(1, 59)}.{rng.randint(1, 999)}s",
            f"{rng.randint(1, 9999)}ms",
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
            f"{rng.randint(1, 999)}.{rng.randint(1, 99)}ms",
        ]
    )


def gen_port(rng: Rng) -> str:
    return f"port {rng.choice([80, 443, 5432, 6379, 8000, 8080, 8443, 9092, 11211, 27017, rng.randint(1024, 65535)])}"


def gen_http_status(rng: Rng) -> str:
    code = rng.choice([400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504])
    return rng.choice([f"HTTP {code}", f"status {code}", f"returned {code}"])


# -- where values go ----------------------------------------------------------------------------------------


@dataclass
class Spec:
    """How one kind of value is generated and where it may appear."""

    gen: Callable[[Rng], str]
    keys: list[str]  # field / variable names for key slots
    texts: list[str]  # free-text templates with {v}
    slots: tuple[str, ...]  # allowed generic slots
    wrap: Callable[[Rng, str], Any] | None = None  # the value as stored under a key (default: itself)
    specials: tuple[str, ...] = ()  # kind-specific slots
    query_keys: tuple[str, ...] = ()  # for 'query' slots


_GENERIC = ("local", "extra", "context", "data", "tag", "text")


def _url_wrap(rng: Rng, pw: str) -> str:
    return rng.choice(
        [
            f"postgres://app:{pw}@db-{rng.randint(1, 9)}.internal:5432/orders",
            f"postgresql://svc_billing:{pw}@10.20.{rng.randint(0, 9)}.{rng.randint(2, 250)}/billing?sslmode=require",
            f"mysql://root:{pw}@mysql.internal:3306/shop",
            f"redis://:{pw}@cache.internal:6379/0",
            f"amqp://worker:{pw}@rabbit.internal:5672/%2F",
            f"https://deploy:{pw}@git.example.com/shop/backend.git",
            f"mongodb+srv://admin:{pw}@cluster0.example.mongodb.net/prod?retryWrites=true",
        ]
    )


def _path_wrap(rng: Rng, prefix: str) -> str:
    return prefix + _path_tail(rng, prefix)


PLANTS: dict[str, Spec] = {
    "email": Spec(
        gen_email,
        ["email", "to", "recipient", "contact", "reply_to", "login", "owner", "value"],
        [
            "could not deliver mail to {v}",
            "user {v} not found",
            "duplicate signup for {v}",
            "password reset requested by {v}",
        ],
        _GENERIC,
        specials=("user.email", "query", "natural.keyerror"),
        query_keys=("email", "to"),
    ),
    "credit_card": Spec(
        gen_credit_card,
        ["card_number", "pan", "cc", "card", "number", "raw_input"],
        ["card {v} declined by issuer", "charging card {v} failed", "invalid literal for card: {v}"],
        _GENERIC,
        wrap=lambda r, v: int(v) if v.isdigit() and r.random() < 0.3 else v,
        specials=("natural.int",),
    ),
    "iban": Spec(
        gen_iban,
        ["iban", "account", "payee_account", "bank_account", "payout_to"],
        ["SEPA transfer to {v} rejected", "invalid payout account {v}"],
        _GENERIC,
    ),
    "us_ssn": Spec(
        gen_us_ssn,
        ["ssn", "tax_id", "national_id", "ident"],
        ["SSN {v} failed verification", "tax id {v} does not match records"],
        _GENERIC,
    ),
    "phone": Spec(
        gen_phone,
        ["phone", "mobile", "tel", "contact_number", "callback"],
        ["SMS to {v} failed", "callback number {v} unreachable", "2FA code sent to {v}"],
        _GENERIC,
        specials=("natural.int", "query"),
        query_keys=("phone", "msisdn"),
    ),
    "ipv4": Spec(
        gen_ipv4,
        ["client_ip", "peer", "remote", "addr", "upstream"],
        ["connection from {v} refused", "too many requests from {v}", "upstream {v} timed out"],
        _GENERIC,
        specials=("user.ip_address", "env.REMOTE_ADDR", "header.X-Forwarded-For"),
    ),
    "ipv6": Spec(
        gen_ipv6,
        ["client_ip", "peer", "remote", "addr", "upstream"],
        ["connection from {v} refused", "too many requests from {v}", "no route to {v}"],
        _GENERIC,
        specials=("user.ip_address", "env.REMOTE_ADDR", "header.X-Forwarded-For"),
    ),
    "mac": Spec(
        gen_mac,
        ["mac", "hw_addr", "device_mac", "interface"],
        ["unknown device {v} on network", "DHCP lease for {v} expired"],
        _GENERIC,
    ),
    "imei": Spec(
        gen_imei,
        ["imei", "device_id", "hardware_id", "handset"],
        ["device IMEI {v} blacklisted", "unknown handset {v}"],
        _GENERIC,
        wrap=lambda r, v: int(v) if v.isdigit() and r.random() < 0.3 else v,
    ),
    "user_path": Spec(
        gen_user_path,
        ["config_path", "path", "filename", "cwd", "target"],
        ["could not read {v}", "permission denied: {v}", "loaded settings from {v}"],
        _GENERIC,
        wrap=_path_wrap,
        specials=("frame.abs_path", "natural.open"),
    ),
    "password": Spec(
        gen_password,
        ["password", "passwd", "db_password", "new_password", "smtp_password", "pwd"],
        [
            "login failed: user=admin password={v}",
            "retrying connect with passwd={v}",
            "DB_PASSWORD={v} rejected by server",
            'config: {"user": "svc", "password": "{v}"}',
        ],
        ("local", "extra", "context", "data", "text"),
        specials=("query",),
        query_keys=("password",),
    ),
    "url_password": Spec(
        gen_url_password,
        ["dsn", "database_url", "broker_url", "url", "conn", "target"],
        ["could not connect to {w}", "retrying {w} in 5s", "pool exhausted for {w}"],
        ("local", "extra", "context", "text"),
        wrap=_url_wrap,
        specials=("crumb.url",),
    ),
    "aws_key": Spec(
        gen_aws_key,
        ["aws_access_key_id", "access_key", "key_id", "value", "arg"],
        ["AccessDenied for key {v}", "using AWS credentials {v} from env", "AWS_ACCESS_KEY_ID={v}"],
        _GENERIC,
        query_keys=("X-Amz-Credential",),
        specials=("query",),
    ),
    "aws_secret": Spec(
        gen_aws_secret,
        ["aws_secret_access_key", "secret_key", "aws_secret"],
        ["AWS_SECRET_ACCESS_KEY={v}", "aws_secret_access_key = {v}"],
        ("local", "extra", "data", "text"),
    ),
    "github_token": Spec(
        gen_github,
        ["token", "gh_token", "github_token", "value", "arg", "header_value"],
        ["GitHub API rejected token {v}", "cloning with {v}", "GITHUB_TOKEN={v}"],
        _GENERIC,
        specials=("header.Authorization.token",),
    ),
    "gitlab_token": Spec(
        gen_gitlab,
        ["token", "private_token", "value", "arg"],
        ["GitLab API rejected {v}", "PRIVATE-TOKEN: {v}"],
        _GENERIC,
        specials=("header.PRIVATE-TOKEN", "query"),
        query_keys=("private_token",),
    ),
    "slack_token": Spec(
        gen_slack,
        ["slack_token", "token", "bot_token", "value", "arg"],
        ["slack post failed with {v}", "chat.postMessage using {v} returned invalid_auth"],
        _GENERIC,
    ),
    "stripe_key": Spec(
        gen_stripe,
        ["stripe_key", "api_key", "secret", "value", "arg"],
        ["Stripe: invalid API key {v}", "charging with {v}"],
        _GENERIC,
        specials=("header.Authorization.bearer",),
    ),
    "google_api_key": Spec(
        gen_google,
        ["google_api_key", "api_key", "maps_key", "value", "arg"],
        ["Geocoding failed for key {v}", "quota exceeded for {v}"],
        _GENERIC,
        specials=("query", "crumb.url"),
        query_keys=("key",),
    ),
    "openai_key": Spec(
        gen_openai,
        ["openai_api_key", "api_key", "llm_key", "value", "arg"],
        ["Incorrect API key provided: {v}", "OPENAI_API_KEY={v}"],
        _GENERIC,
        specials=("header.Authorization.bearer",),
    ),
    "jwt": Spec(
        gen_jwt,
        ["id_token", "jwt", "access_token", "claims_raw", "value"],
        ["token {v} expired", "could not decode {v}"],
        _GENERIC,
        specials=("header.Authorization.bearer", "query", "cookie"),
        query_keys=("id_token", "jwt"),
    ),
    "bearer_token": Spec(
        gen_bearer,
        ["auth_header", "authorization", "headers"],
        ["request failed with Authorization: Bearer {v}", "upstream 401 for Bearer {v}"],
        ("local", "extra", "text"),
        wrap=lambda r, v: f"Bearer {v}",
        specials=("header.Authorization.bearer", "local.headers"),
    ),
    "basic_auth": Spec(
        gen_basic,
        ["auth_header", "authorization", "headers"],
        ["proxy rejected Authorization: Basic {v}", "sending Basic {v} to registry"],
        ("local", "extra", "text"),
        wrap=lambda r, v: f"Basic {v}",
        specials=("header.Authorization.basic", "local.headers"),
    ),
    "session_id": Spec(
        gen_session,
        ["sessionid", "session", "sid"],
        ["Cookie: sessionid={v}; theme=dark"],
        ("local", "text"),
        specials=("cookie",),
    ),
    "pem_private_key": Spec(
        gen_pem,
        ["private_key", "key_pem", "tls_key", "blob", "contents"],
        ["failed to parse key:\n{w}"],
        ("local", "extra", "data", "text"),
        wrap=lambda r, v: _pem_block(r, v),
    ),
}

DECOYS: dict[str, Spec] = {
    "uuid": Spec(
        gen_uuid,
        ["request_id", "job_id", "tenant_id", "trace_ref", "object_uuid"],
        ["request {v} failed", "job {v} retried", "tenant {v} over quota", "request_id={v} status=failed"],
        _GENERIC,
        specials=("crumb.path", "header.X-Request-Id", "query"),
        query_keys=("request_id", "job"),
    ),
    "git_sha": Spec(
        gen_git_sha,
        ["commit", "revision", "build_sha"],
        ["deployed commit {v}", "checking out {v}", "build={v} deployed"],
        _GENERIC,
        specials=("crumb.path",),
    ),
    "hex_id": Spec(
        gen_hex_id,
        ["object_id", "etag", "span_ref", "cache_entry"],
        ["cache miss for {v}", "object {v} missing from bucket"],
        _GENERIC,
        specials=("crumb.path", "header.X-Request-Id"),
    ),
    "semver": Spec(
        gen_semver,
        ["version", "app_version", "client_version"],
        ["client version {v} unsupported", "upgrading from {v}", "client=ios version={v}"],
        _GENERIC,
        specials=("header.X-Client-Version", "query"),
        query_keys=("v", "client_version"),
    ),
    "timestamp": Spec(
        gen_timestamp,
        ["started_at", "created_at", "scheduled_for"],
        ["job scheduled at {v}", "last heartbeat {v}"],
        _GENERIC,
    ),
    "date": Spec(
        gen_date,
        ["date", "billing_date", "valid_until"],
        ["report for {v} is empty", "invoice dated {v} overdue"],
        _GENERIC,
        specials=("query",),
        query_keys=("since", "date"),
    ),
    "order_id": Spec(
        gen_order_id,
        ["order_id", "order_number", "invoice_no", "reference"],
        ["order {v} not found", "refund for order {v} pending", "order={v} state=pending"],
        _GENERIC,
        wrap=lambda r, v: int(v) if r.random() < 0.3 else v,
        specials=("crumb.path", "query"),
        query_keys=("order_id", "ref"),
    ),
    "sql": Spec(
        gen_sql,
        ["query", "sql", "statement"],
        ["query failed: {v}", "slow query: {v}"],
        ("local", "extra", "context", "data", "text"),
    ),
    "route": Spec(
        gen_route, ["route", "endpoint", "path_template"], ["no handler for {v}", "matched route {v}"], _GENERIC
    ),
    "duration": Spec(
        gen_duration,
        ["elapsed", "duration", "timeout"],
        ["timed out after {v}", "request took {v}", "took={v} retries=3"],
        _GENERIC,
    ),
    "port": Spec(
        gen_port, ["listen", "bind", "target_port"], ["connection refused on {v}", "listening on {v}"], _GENERIC
    ),
    "http_status": Spec(
        gen_http_status, ["upstream_status", "result", "outcome"], ["upstream {v}", "payment gateway {v}"], _GENERIC
    ),
}

DOMAINS_CODE = [
    (
        "app.billing.charges",
        "billing",
        ["handle_checkout", "charge_customer", "authorize_payment", "call_gateway"],
        ["PaymentDeclined", "GatewayError"],
    ),
    (
        "app.accounts.auth",
        "accounts",
        ["login_view", "authenticate", "check_credentials", "load_profile"],
        ["AuthenticationFailed", "PermissionError"],
    ),
    (
        "app.integrations.client",
        "integrations",
        ["sync_all", "push_batch", "send_request", "parse_response"],
        ["UpstreamError", "TimeoutError"],
    ),
    ("workers.exports", "workers", ["run_export", "build_report", "write_rows", "flush"], ["ExportFailed", "OSError"]),
    (
        "app.notifications.sms",
        "notifications",
        ["notify_user", "render_template", "send_sms", "post_to_provider"],
        ["DeliveryError", "ValueError"],
    ),
]


@dataclass
class Draft:
    """Everything one event will carry, before the SDK turns it into a payload."""

    mode: str
    frames: list[dict[str, Any]]
    exc_parts: list[str] = field(default_factory=list)
    msg_parts: list[tuple[str, str]] = field(default_factory=list)  # (template with {v}, value)
    log_crumbs: list[tuple[str, str]] = field(default_factory=list)
    http_crumbs: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    request: dict[str, Any] | None = None
    user: dict[str, Any] = field(default_factory=dict)
    home: str | None = None  # frame abs_path prefix
    natural: tuple[str, Any] | None = None  # ('open'|'keyerror'|'int', value)
    query: list[str] = field(default_factory=list)


def _request(draft: Draft, rng: Rng) -> dict[str, Any]:
    if draft.request is None:
        draft.request = {
            "method": rng.choice(["GET", "POST", "PUT"]),
            "url": f"https://shop.example.com/api/v1/{rng.choice(['checkout', 'login', 'profile', 'export'])}",
            "query_string": "",
            "headers": {
                "Host": "shop.example.com",
                "User-Agent": rng.choice(
                    [
                        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                        "Chrome/124.0.6367.91 Safari/537.36",
                        "python-requests/2.31.0",
                        "okhttp/4.12.0",
                        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
                    ]
                ),
                "Accept": "application/json",
            },
            "cookies": {},
            "data": {},
            "env": {"SERVER_NAME": "web-1", "SERVER_PORT": "8000"},
        }
    return draft.request


def _free_key(container: dict[str, Any], names: list[str], rng: Rng) -> str | None:
    candidates = [n for n in names if n not in container]
    return rng.choice(candidates) if candidates else None


def _ident(name: str) -> str:
    return name.replace("-", "_").replace(".", "_")


def _render(template: str, value: str, wrapped: Any) -> str:
    return template.replace("{v}", value).replace("{w}", str(wrapped))


class Placer:
    """Puts values into a draft; returns False when a slot cannot take the value."""

    def __init__(self, rng: Rng, draft: Draft) -> None:
        self.rng = rng
        self.d = draft

    def place(self, kind: str, spec: Spec, value: str, slot: str) -> bool:
        rng, d = self.rng, self.d
        wrapped = spec.wrap(rng, value) if spec.wrap else value
        text_value = value if "{w}" not in "".join(spec.texts) else wrapped
        keys = spec.keys
        if slot == "local":
            if d.mode not in ("exception", "logging_exception"):
                return False
            frame = rng.choice(d.frames)
            key = _free_key(frame, [_ident(k) for k in keys], rng)
            if key is None or len(frame) >= 8:
                return False
            if key == "headers":
                wrapped = {"Accept": "application/json", "Authorization": wrapped}
            elif isinstance(wrapped, str) and rng.random() < 0.15 and "record" not in frame:
                # an object whose repr carries the value, as the SDK shows arbitrary locals
                key, wrapped = (
                    "record",
                    _Obj(
                        rng.choice(["Customer", "Job", "Settings"]),
                        id=rng.randint(1, 9999),
                        **{_ident(rng.choice(keys)): wrapped},
                    ),
                )
            frame[key] = wrapped
            return True
        if slot in ("extra", "data", "tag"):
            target = d.extra if slot == "extra" else d.tags if slot == "tag" else _request(d, rng)["data"]
            if slot == "tag" and (not isinstance(wrapped, str) or len(wrapped) > 200 or "\n" in wrapped):
                return False
            names = [k.replace("_", ".") for k in keys] if slot == "tag" else keys
            key = _free_key(target, names, rng)
            if key is None or len(target) >= 9:
                return False
            target[key] = wrapped
            return True
        if slot == "context":
            name = rng.choice(["payment", "customer", "handset", "job", "integration"])
            ctx = d.contexts.setdefault(name, {})
            key = _free_key(ctx, keys, rng)
            if key is None or len(ctx) >= 9:
                return False
            ctx[key] = wrapped
            return True
        if slot == "text":
            template = rng.choice(spec.texts)
            where = rng.random()
            if d.mode in ("exception", "logging_exception") and where < 0.5:
                d.exc_parts.append(_render(template, value, text_value))
            elif d.mode in ("message", "logging_error", "logging_exception") and where < 0.8:
                if "{w}" in template:
                    d.msg_parts.append((template.replace("{w}", "{v}"), str(text_value)))
                else:
                    d.msg_parts.append((template, value))
            else:
                if "{w}" in template:
                    d.log_crumbs.append((template.replace("{w}", "{v}"), str(text_value)))
                else:
                    d.log_crumbs.append((template, value))
            return True
        return self.special(kind, spec, value, wrapped, slot)

    def special(self, kind: str, spec: Spec, value: str, wrapped: Any, slot: str) -> bool:
        rng, d = self.rng, self.d
        if slot == "user.email":
            if "email" in d.user:
                return False
            d.user["email"] = value
            return True
        if slot == "user.ip_address":
            if "ip_address" in d.user:
                return False
            d.user["ip_address"] = value
            return True
        if slot == "env.REMOTE_ADDR":
            env = _request(d, rng)["env"]
            if "REMOTE_ADDR" in env:
                return False
            env["REMOTE_ADDR"] = value
            return True
        if slot.startswith("header."):
            headers = _request(d, rng)["headers"]
            parts = slot.split(".")
            name = parts[1]
            if name in headers:
                return False
            if name == "X-Forwarded-For":
                headers[name] = f"{value}, 10.0.{rng.randint(0, 9)}.{rng.randint(2, 250)}"
            elif len(parts) == 3:
                scheme = {"bearer": "Bearer", "basic": "Basic", "token": "token"}[parts[2]]
                headers[name] = f"{scheme} {value}"
            else:
                headers[name] = value
            return True
        if slot == "cookie":
            req = _request(d, rng)
            name = "sessionid" if kind == "session_id" else rng.choice(["id_token", "auth_jwt"])
            if name in req["cookies"]:
                return False
            req["cookies"][name] = value
            req["cookies"].setdefault("theme", "dark")
            req["headers"]["Cookie"] = "; ".join(f"{k}={v}" for k, v in req["cookies"].items())
            return True
        if slot == "crumb.path":
            base = rng.choice(
                [
                    "https://api.example.com/v1/jobs",
                    "https://git.example.com/shop/backend/commit",
                    "http://orders.internal:8080/orders",
                    "https://cdn.example.net/objects",
                ]
            )
            d.http_crumbs.append(
                {"url": f"{base}/{value}", "http.method": "GET", "status_code": 404, "reason": "Not Found"}
            )
            return True
        if slot == "query":
            if " " in value or ":" in value:
                return False  # would be percent-encoded in a real query string
            key = rng.choice(spec.query_keys)
            pair = f"{key}={value}"
            if rng.random() < 0.5:
                d.query.append(pair)
                _request(d, rng)
            else:
                d.http_crumbs.append(self._http_crumb(pair))
            return True
        if slot == "crumb.url":
            if kind == "url_password":
                url = f"https://deploy:{value}@registry.example.com/v2/shop/manifests/latest"
                d.http_crumbs.append({"url": url, "http.method": "GET", "status_code": 401, "reason": "Unauthorized"})
            else:
                d.http_crumbs.append(self._http_crumb(f"key={value}", full=True))
            return True
        if slot == "frame.abs_path":
            if d.mode not in ("exception", "logging_exception") or d.home is not None or "\\" in value:
                return False
            d.home = value
            return True
        if slot == "local.headers":
            if d.mode not in ("exception", "logging_exception"):
                return False
            frame = rng.choice(d.frames)
            if "headers" in frame or len(frame) >= 8:
                return False
            frame["headers"] = {"Accept": "application/json", "Authorization": wrapped, "X-Request-Id": "r-1"}
            return True
        if slot.startswith("natural."):
            if d.mode not in ("exception", "logging_exception") or d.natural is not None:
                return False
            op = slot.split(".")[1]
            if op == "int" and not any(c in " -()" for c in value):
                return False  # int() would parse it and nothing would be raised
            d.natural = (op, wrapped if op == "open" else value)
            return True
        raise ValueError(slot)

    def _http_crumb(self, pair: str, full: bool = False) -> dict[str, Any]:
        rng = self.rng
        base = rng.choice(
            [
                "https://api.partner.example.net/v2/lookup",
                "https://maps.example.com/geocode/json",
                "http://inventory.internal:8080/items",
                "https://hooks.example.org/notify",
            ]
        )
        query = f"{pair}&page={rng.randint(1, 9)}" if rng.random() < 0.5 else f"lang=en&{pair}"
        status = rng.choice([200, 200, 401, 403, 500])
        if full or rng.random() < 0.5:
            return {"url": f"{base}?{query}", "http.method": "GET", "status_code": status}
        return {"url": base, "http.method": "GET", "http.query": query, "http.fragment": "", "status_code": status}


def _slots_for(spec: Spec) -> list[str]:
    return list(spec.slots) + list(spec.specials)


# -- running the SDK ------------------------------------------------------------------------------------------


_LOGGER = logging.getLogger("shop.app")
_CRUMB_LOGGER = logging.getLogger("shop.app.requests")


class _Obj:
    def __init__(self, name: str, **fields: Any) -> None:
        self._name = name
        self._fields = fields

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields.items())
        return f"{self._name}({inner})"


def _code(
    module: str, funcs: list[str], frames: list[dict[str, Any]], exc_cls: str, chained: bool, natural: str | None
) -> tuple[str, list[Any]]:
    """Source of a module whose `run()` raises through nested functions holding the frames' locals."""
    values: list[Any] = []
    out = ["import json", ""]
    builtin = exc_cls in ("PermissionError", "TimeoutError", "OSError", "ValueError")
    if not builtin:
        out += [f"class {exc_cls}(Exception):", "    pass", ""]
    out += ["", "def run():", "    try:", f"        {funcs[0]}()", "    except Exception:", "        _CAPTURE()", ""]
    for index, name in enumerate(funcs):
        out += ["", f"def {name}():"]
        for var, val in frames[index].items():
            values.append(val)
            out.append(f"    {var} = _V[{len(values) - 1}]")
        last = index == len(funcs) - 1
        if not last:
            nxt = funcs[index + 1]
            if index == len(funcs) - 2 and (chained or natural):
                out += [
                    "    try:",
                    f"        return {nxt}()",
                    "    except (OSError, KeyError, ValueError) as exc:",
                    f"        raise {exc_cls}(_MSG) from exc",
                ]
            else:
                out.append(f"    return {nxt}()")
        elif natural == "open":
            out += ["    with open(_NAT) as fh:", "        return json.load(fh)"]
        elif natural == "keyerror":
            out += ["    index = {}", "    return index[_NAT]"]
        elif natural == "int":
            out += ["    return int(_NAT)"]
        elif chained:
            out += ["    raise ConnectionRefusedError(111, 'Connection refused')"]
        else:
            out += [f"    raise {exc_cls}(_MSG)"]
    return "\n".join(out) + "\n", values


class _MemoryTransport:
    """Factory for a sentry_sdk Transport subclass that keeps event payloads in memory."""

    @staticmethod
    def make() -> Any:
        from sentry_sdk.transport import Transport

        class MemoryTransport(Transport):
            def __init__(self, options: dict[str, Any] | None = None) -> None:
                super().__init__(options)
                self.events: list[dict[str, Any]] = []

            def capture_envelope(self, envelope: Any) -> None:
                for item in envelope.items:
                    if item.type == "event":
                        self.events.append(json.loads(item.payload.get_bytes()))

        return MemoryTransport()


def _init_sdk() -> Any:
    import sentry_sdk
    from sentry_sdk.scrubber import EventScrubber

    class _PassThrough(EventScrubber):
        """The client-side scrubber would filter passwords before they reach the relay; keep payloads raw."""

        def scrub_event(self, event: Any) -> None:
            return None

    transport = _MemoryTransport.make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sentry_sdk.init(
            dsn="http://k@localhost/1",
            transport=transport,
            send_default_pii=True,
            include_local_variables=True,
            max_request_body_size="always",
            traces_sample_rate=0,
            release="shop-backend@4.12.0",
            environment="production",
            server_name="web-1",
            event_scrubber=_PassThrough(),
        )
    for lg in (_LOGGER, _CRUMB_LOGGER):
        lg.setLevel(logging.INFO)
        lg.propagate = False
        if not lg.handlers:
            lg.addHandler(logging.NullHandler())
    return transport


def _leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        yield str(value)
    elif isinstance(value, dict):
        for child in value.values():
            yield from _leaves(child)
    elif isinstance(value, list):
        for child in value:
            yield from _leaves(child)


def observed_forms(value: str, leaves: list[str]) -> list[str]:
    """The forms of `value` present in the payload: as is, repr-escaped, or (if truncated) a long prefix."""
    forms = []
    for form in dict.fromkeys([value, repr(value)[1:-1], value.encode("unicode_escape").decode()]):
        if any(form in leaf for leaf in leaves):
            forms.append(form)
    if forms:
        return forms
    low = max(8, len(value) // 2)
    for end in range(len(value) - 1, low - 1, -1):
        prefix = value[:end]
        if any(prefix in leaf for leaf in leaves):
            return [prefix]
    return []


class Generator:
    """Drives a live sentry-python client to build labeled events."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.transport = _init_sdk()

    def one(self, index: int) -> dict[str, Any] | None:
        rng = self.rng
        mode = rng.choices(["exception", "logging_exception", "message", "logging_error"], [60, 10, 18, 12])[0]
        n_frames = rng.randint(3, 5) if mode in ("exception", "logging_exception") else 0
        draft = Draft(mode=mode, frames=[{} for _ in range(n_frames)])
        placer = Placer(rng, draft)
        planted: list[tuple[str, str]] = []
        decoys: list[tuple[str, str]] = []

        for kind in rng.choices(sorted(PLANTS), k=rng.randint(3, 8)):
            spec = PLANTS[kind]
            value = spec.gen(rng)
            slots = _slots_for(spec)
            wanted = 2 if rng.random() < 0.3 else 1
            placed = 0
            for slot in rng.sample(slots, len(slots)):
                if placer.place(kind, spec, value, slot):
                    placed += 1
                    if placed == wanted:
                        break
            if placed:
                planted.append((kind, value))
        for kind in rng.choices(sorted(DECOYS), k=rng.randint(3, 7)):
            spec = DECOYS[kind]
            value = spec.gen(rng)
            slots = _slots_for(spec)
            for slot in rng.sample(slots, len(slots)):
                if placer.place(kind, spec, value, slot):
                    decoys.append((kind, value))
                    break

        event = self._capture(draft, rng, index)
        if event is None:
            return None
        leaves = list(_leaves(event))
        record_planted = []
        for kind, value in planted:
            for form in observed_forms(value, leaves):
                record_planted.append({"kind": kind, "value": form})
        record_decoys = []
        for kind, value in decoys:
            for form in observed_forms(value, leaves):
                record_decoys.append({"kind": kind, "value": form})
        return {"id": index, "mode": mode, "event": event, "planted": record_planted, "decoys": record_decoys}

    def _capture(self, d: Draft, rng: Rng, index: int) -> dict[str, Any] | None:
        import sentry_sdk

        before = len(self.transport.events)
        module, area, funcs_all, classes = rng.choice(DOMAINS_CODE)
        with sentry_sdk.isolation_scope() as scope:
            user: dict[str, Any] = {"id": str(rng.randint(1, 500_000))}
            if rng.random() < 0.6:
                user["username"] = f"{rng.choice(FIRST)}{rng.randint(1, 99)}"
            user.update(d.user)
            scope.set_user(user)
            scope.set_tag("area", area)
            for key, value in d.tags.items():
                scope.set_tag(key, value)
            for key, value in d.extra.items():
                scope.set_extra(key, value)
            for name, ctx in d.contexts.items():
                scope.set_context(name, ctx)
            if d.request is not None or rng.random() < 0.5:
                req = _request(d, rng)
                if d.query:
                    req["query_string"] = "&".join([*d.query, f"page={rng.randint(1, 5)}"])
                if not req["data"]:
                    req["data"] = {"quantity": rng.randint(1, 5), "sku": f"SKU-{rng.randint(1000, 9999)}"}

                def add_request(event: dict[str, Any], hint: dict[str, Any], req: dict[str, Any] = req) -> Any:
                    event["request"] = req
                    return event

                scope.add_event_processor(add_request)
            # breadcrumbs: a little navigation, then the ones carrying values, in random order
            crumbs: list[tuple[str, Any]] = [("log", ("cache warmed in %s", "12ms")), ("nav", None)]
            crumbs += [("log", c) for c in d.log_crumbs] + [("http", c) for c in d.http_crumbs]
            rng.shuffle(crumbs)
            for typ, crumb in crumbs:
                if typ == "log":
                    template, value = crumb
                    _CRUMB_LOGGER.log(rng.choice([logging.INFO, logging.WARNING]), template.replace("{v}", "%s"), value)
                elif typ == "http":
                    sentry_sdk.add_breadcrumb(type="http", category="httplib", data=dict(crumb))
                else:
                    sentry_sdk.add_breadcrumb(category="navigation", data={"from": "/cart", "to": "/checkout"})

            msg_template = " | ".join(t for t, _ in d.msg_parts) or rng.choice(["checkout failed", "sync aborted"])
            msg_values = [v for _, v in d.msg_parts]
            if d.mode in ("exception", "logging_exception"):
                exc_msg = "; ".join(d.exc_parts) or rng.choice(["request failed", "unexpected state"])
                exc_cls = rng.choice(classes)
                funcs = funcs_all[: len(d.frames)] if len(d.frames) <= len(funcs_all) else funcs_all
                funcs = [*funcs, *(f"{funcs_all[-1]}_step{i}" for i in range(len(d.frames) - len(funcs)))]
                frames = d.frames
                chained = rng.random() < 0.25
                natural = d.natural[0] if d.natural else None
                src, values = _code(module, funcs, frames, exc_cls, chained, natural)
                base = d.home + "srv/shop/" if d.home else "/srv/shop/"
                filename = base + module.replace(".", "/") + ".py"
                linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
                if d.mode == "exception":
                    capture: Callable[[], Any] = sentry_sdk.capture_exception
                else:
                    text = msg_template.replace("{v}", "%s")

                    def capture(text: str = text) -> None:
                        _LOGGER.exception(text, *msg_values)

                namespace = {
                    "__name__": module,
                    "_V": values,
                    "_MSG": exc_msg,
                    "_NAT": d.natural[1] if d.natural else None,
                    "_CAPTURE": capture,
                }
                exec(compile(src, filename, "exec"), namespace)
                namespace["run"]()
                linecache.cache.pop(filename, None)
            elif d.mode == "message":
                sentry_sdk.capture_message(
                    _render_all(msg_template, msg_values), level=rng.choice(["error", "warning"])
                )
            else:
                _LOGGER.error(msg_template.replace("{v}", "%s"), *msg_values)
        if len(self.transport.events) != before + 1:
            return None
        return self.transport.events.pop()


def _render_all(template: str, values: list[str]) -> str:
    out = template
    for value in values:
        out = out.replace("{v}", value, 1)
    return out


def generate(n: int, seed: int) -> Iterator[dict[str, Any]]:
    """Yield `n` labeled corpus records (events without any surviving plant are skipped and replaced)."""
    gen = Generator(seed)
    made = 0
    index = 0
    while made < n:
        record = gen.one(index)
        index += 1
        if record is None or not record["planted"]:
            continue
        made += 1
        yield record
    import sentry_sdk

    sentry_sdk.get_client().close()


def write(records: Iterator[dict[str, Any]], out: Path) -> int:
    """Write records as JSON lines, returning how many."""
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(out)
    return count


def load(path: Path) -> list[dict[str, Any]]:
    """Read a corpus file."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    count = write(generate(args.events, args.seed), args.out)
    records = load(args.out)
    plants = sum(len(r["planted"]) for r in records)
    decoys = sum(len(r["decoys"]) for r in records)
    print(f"wrote {count} events, {plants} planted values, {decoys} decoys to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
