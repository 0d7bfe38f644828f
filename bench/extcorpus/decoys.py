"""Decoys: values that look like personal data or secrets to a careless detector and must be kept verbatim.

Most come from Faker's providers (UUIDs, hashes, ISBNs, EANs, hostnames, paths, prices, timestamps, user
agents); the rest are drawn in the shapes of real ids (trace ids, Stripe object ids, Luhn-invalid order ids).
"""

from __future__ import annotations

import random
import string
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

from .model import Value, sub_rng

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
ERROR_CODES = (
    "ERR_CONNECTION_RESET",
    "ECONNREFUSED",
    "ORA-00942",
    "E11000",
    "0x80070005",
    "SQLSTATE 23505",
    "HTTP 503",
    "errno 104",
    "EPIPE",
    "AADSTS50126",
    "NSURLErrorDomain -1009",
    "ETIMEDOUT",
)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if index % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _order_id(rng: random.Random) -> str:
    """A card-shaped order number (16 digits, a card issuer's prefix) that fails the Luhn check."""
    while True:
        text = rng.choice("4536") + "".join(rng.choice(string.digits) for _ in range(15))
        if not _luhn_ok(text):
            return text


def _timestamp(rng: random.Random, when: datetime) -> str:
    styles: list[Callable[[], str]] = [
        lambda: when.isoformat(),
        lambda: when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
        lambda: when.strftime("%Y-%m-%d %H:%M:%S,%f")[:-3],
        lambda: format_datetime(when),
        lambda: when.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        lambda: str(int(when.timestamp())),
        lambda: str(int(when.timestamp() * 1000)),
        lambda: f"{when.timestamp():.6f}",
        lambda: when.strftime("%Y%m%d%H%M%S"),
    ]
    return rng.choice(styles)()


def _stripe(rng: random.Random) -> str:
    prefix, n = rng.choice([("cus_", 14), ("pi_", 24), ("ch_", 24), ("in_", 24), ("sub_", 14), ("prod_", 14)])
    return prefix + "".join(rng.choice(ALNUM) for _ in range(n))


def _generators(fake: Any, rng: random.Random) -> list[tuple[str, str, Callable[[], str]]]:
    """(kind, key an app would file it under, generator) for every decoy kind."""
    start = datetime(2019, 1, 1, tzinfo=UTC)

    def when() -> datetime:
        return start + timedelta(seconds=rng.randrange(7 * 365 * 86400), microseconds=rng.randrange(10**6))

    return [
        ("uuid", "request_id", lambda: str(fake.uuid4())),
        ("trace_id", "trace", lambda: "".join(rng.choice(HEX) for _ in range(32))),
        ("span_id", "span", lambda: "".join(rng.choice(HEX) for _ in range(16))),
        ("git_sha", "commit", fake.sha1),
        ("md5", "checksum", fake.md5),
        ("sha256", "digest", fake.sha256),
        ("order_id_luhn_invalid", "order_id", lambda: _order_id(rng)),
        ("timestamp", "at", lambda: _timestamp(rng, when())),
        ("version", "version", lambda: f"{rng.randint(0, 12)}.{rng.randint(0, 40)}.{rng.randint(0, 99)}"),
        ("build_number", "build", lambda: f"{when():%Y%m%d}.{rng.randint(1, 40)}"),
        ("price", "amount", fake.pricetag),
        ("sku", "sku", lambda: fake.bothify(rng.choice(["SKU-####-??", "??-#####", "###-???-####"])).upper()),
        ("isbn13", "isbn", fake.isbn13),
        ("isbn10", "isbn", fake.isbn10),
        ("ean13", "ean", fake.ean13),
        ("hostname", "host", fake.hostname),
        ("file_path", "path", lambda: fake.file_path(depth=rng.randint(2, 4))),
        ("error_code", "code", lambda: rng.choice(ERROR_CODES)),
        ("stripe_id", "object", lambda: _stripe(rng)),
        ("user_agent", "user_agent", fake.user_agent),
        ("http_status", "status", lambda: str(rng.choice([200, 201, 204, 301, 400, 401, 403, 404, 409, 500, 502]))),
        ("duration", "elapsed", lambda: f"{rng.randint(1, 9999)}ms"),
    ]


def values(seed: int, per_kind: int = 30) -> Iterator[Value]:
    """`per_kind` decoys of every kind."""
    from faker import Faker

    rng = sub_rng(seed, "decoys")
    fake = Faker("en_US")
    fake.seed_instance(f"{seed}:decoys")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for kind, label, make in _generators(fake, rng):
            for _ in range(per_kind):
                yield Value(kind, str(make()), "-", label, "faker" if kind in _FAKER else "shape", decoy=True)


_FAKER = {
    "uuid",
    "git_sha",
    "md5",
    "sha256",
    "price",
    "sku",
    "isbn13",
    "isbn10",
    "ean13",
    "hostname",
    "file_path",
    "user_agent",
}
