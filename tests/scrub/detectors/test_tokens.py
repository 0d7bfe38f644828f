"""The vendor token table (tokens.yml) through the real engine and shipped packs, its checksums and triggers."""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import string
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.rules import load_pack
from relay.rules.verify import strings_in
from relay.scrub import detectors
from relay.scrub.detectors import checksums, tokens
from relay.scrub.detectors.tokens import TokenFormat, TokenTableError
from relay.scrub.engine import Scrubber

SECRETS, PII = load_pack("secrets"), load_pack("pii")
SCRUBBER = Scrubber((*SECRETS.rules, *PII.rules), b"token-test-key")  # relay.example.yml: rules: [secrets, pii]
VENDOR = detectors.DETECTORS["vendor_token"]
AWS_LABEL = detectors.DETECTORS["aws_secret_access_key"]
ROWS = [pytest.param(row, id=row.id) for row in tokens.TABLE]
COMPILED = [pytest.param(row, id=row.id) for row in tokens.COMPILED_ROWS]
WITH_CHECKSUM = [pytest.param(row, id=row.id) for row in tokens.TABLE if row.checksum]

CLASSES = {
    "alnum": string.ascii_letters + string.digits, "alpha": string.ascii_letters, "lower": string.ascii_lowercase,
    "upper": string.ascii_uppercase, "digit": string.digits, "hex": "0123456789abcdef", "HEX": "0123456789ABCDEF",
    "lalnum": string.ascii_lowercase + string.digits, "ualnum": string.ascii_uppercase + string.digits,
    "b64": string.ascii_letters + string.digits + "+/", "b64url": string.ascii_letters + string.digits + "_-",
    "bech32": checksums.BECH32.upper(), "bech32lower": checksums.BECH32,
}  # fmt: skip
_FIELD = re.compile(r"\{(\w+)(?::([^}]*))?\}")


def _checksum(row: TokenFormat, before: str) -> str:
    """What completes `before` with a valid checksum of the row's kind."""
    if row.checksum == "crc32_base62":
        return checksums.crc32_base62_of(before.partition("_")[2])
    if row.checksum == "crc32_hex_le":
        return checksums.crc32_hex_le_of(before.rstrip("_"))
    if row.checksum == "bech32":
        hrp, _, data = before.lower().rpartition("1")
        return checksums.bech32_checksum_of(hrp, data).upper()
    raise AssertionError(f"{row.id}: no forger for {row.checksum}")


def _json_b64(keys: list[str], rng: random.Random) -> str:
    """A base64 JSON object with these keys (in order) and random values, as such tokens carry."""
    values = {key: "".join(rng.choices(CLASSES["alnum"], k=32)) for key in keys}
    return base64.b64encode(json.dumps(values, separators=(",", ":")).encode()).decode()


def _macaroon_b64(location: str, rng: random.Random) -> str:
    """A version 2 macaroon (location, identifier, one caveat, signature) in unpadded base64url."""

    def field(kind: int, data: bytes) -> bytes:
        return bytes([kind, len(data)]) + data

    identifier = rng.randbytes(16).hex().encode()
    caveat = json.dumps({"version": 1, "permissions": "user"}).encode()
    data = b"\x02" + field(1, location.encode()) + field(2, identifier) + b"\x00" + field(2, caveat) + b"\x00\x00"
    data += field(6, rng.randbytes(32))
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def expand(row: TokenFormat, template: str, seed: int = 0) -> tuple[str, list[tuple[int, int]]]:
    """A template of the table made concrete, and where its generated pieces are."""
    rng = random.Random(f"{row.id}/{seed}")
    out, pieces, pos = "", [], 0
    for field in _FIELD.finditer(template):
        out += template[pos : field.start()]
        kind, arg = field.group(1), field.group(2) or ""
        if kind in CLASSES:
            piece = "".join(rng.choices(CLASSES[kind], k=int(arg)))
        elif kind == "checksum":
            piece = _checksum(row, out)
        elif kind == "json":
            piece = _json_b64(arg.split(","), rng)
        elif kind == "macaroon":
            piece = _macaroon_b64(arg, rng)
        else:
            raise AssertionError(f"{row.id}: unknown template field {field.group(0)}")
        pieces.append((len(out), len(out) + len(piece)))
        out += piece
        pos = field.end()
    return out + template[pos:], pieces


def event(text: str) -> dict[str, Any]:
    """An event carrying `text` in a message and in extra data."""
    return {"message": f"upstream said {text} and gave up", "extra": {"note": text}}


def rules_in(meta: Any) -> Iterator[str]:
    """The rule ids of every remark in an event's `_meta`."""
    if isinstance(meta, dict):
        for key, value in meta.items():
            if key == "rem":
                yield from (remark[0] for remark in value)
            else:
                yield from rules_in(value)


def scrub(text: str) -> tuple[dict[str, Any], set[str]]:
    """The event with `text` scrubbed by the shipped packs, and the rules that changed it."""
    out = SCRUBBER.scrub_event(copy.deepcopy(event(text)))
    return out, set(rules_in(out.pop("_meta", {})))


def rule_of(detector: str) -> str:
    """The id of the secrets pack's rule that uses `detector`."""
    return next(rule.id for rule in SECRETS.rules if rule.detector is not None and rule.detector.name == detector)


def test_table_is_broad() -> None:
    """The table covers gitleaks' self-identifying formats and more, with unique ids and two families."""
    assert len(tokens.TABLE) >= 120 and len(tokens.COMPILED_ROWS) >= 100
    assert len({row.id for row in tokens.TABLE}) == len(tokens.TABLE)
    assert set(tokens.TRIGGERS) == {"vendor_token", "aws_secret_label"}
    assert {"vendor_token", "aws_secret_label"} <= set(detectors.KEYWORD_FAMILIES)


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_example_is_scrubbed(row: TokenFormat, seed: int) -> None:
    """A row's example loses every generated character its pattern covers; its rule is the one reported."""
    text, pieces = expand(row, row.example, seed)
    spans = [match.span() for match in row.regex.finditer(text)]
    secret = [text[a:b] for a, b in pieces if any(s <= a and b <= e for s, e in spans)]
    assert secret, f"{row.id}: the example {text!r} doesn't match the row's pattern"
    out, fired = scrub(text)
    assert out["message"].startswith("upstream said ") and out["message"].endswith(" and gave up")
    for value in strings_in(out):
        for piece in secret:
            assert len(piece) < 6 or piece not in value, f"{row.id}: {piece!r} survived in {value!r}"
    expected = rule_of(row.covered_by) if row.covered_by else "secrets.vendor_tokens"
    assert expected in fired, f"{row.id}: scrubbed by {fired}, not {expected}"


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_near_miss_is_kept(row: TokenFormat, seed: int) -> None:
    """A row's near miss doesn't match its pattern and comes through the shipped packs unchanged."""
    text, _ = expand(row, row.near_miss, seed)
    assert row.regex.search(text) is None, f"{row.id}: the near miss {text!r} matches"
    out, fired = scrub(text)
    assert out == event(text), f"{row.id}: {text!r} was changed by {fired}"


@pytest.mark.parametrize("row", COMPILED)
def test_example_is_identified(row: TokenFormat) -> None:
    """The detector finds the example, and `identify` names its row (no row before it shadows it)."""
    text, _ = expand(row, row.example)
    found = [text[a:b] for a, b in VENDOR.find(text)]
    assert len(found) == 1, f"{row.id}: {found}"
    assert tokens.identify(found[0]) is row


def _broken(row: TokenFormat, token: str) -> str:
    """The token with its own check broken and its shape kept."""
    if row.checksum == "macaroon":
        return token[:-8]  # the signature cut short
    if row.checksum == "base64_json":  # the object's closing brace replaced: no longer JSON
        start = token.index("eyJ")
        payload = token[start:].partition("_")[0]
        data = base64.b64decode(payload + "=" * (-len(payload) % 4))
        return token.replace(payload, base64.b64encode(data[:-1] + b"!").decode()[: len(payload)], 1)
    alphabet = checksums.BECH32.upper() if row.checksum == "bech32" else "0123456789abcdef"
    index = len(token) - 3  # a character of the checksum
    return token[:index] + next(ch for ch in alphabet if ch != token[index]) + token[index + 1 :]


@pytest.mark.parametrize("row", WITH_CHECKSUM)
def test_checksum_is_tested_not_required(row: TokenFormat) -> None:
    """The example passes the row's checksum, a broken copy fails it, and is scrubbed all the same."""
    check = checksums.CHECKSUMS[row.checksum]
    text, _ = expand(row, row.example)
    token = next(match.group() for match in row.regex.finditer(text))
    assert check(token), f"{row.id}: {token!r} fails {row.checksum}"
    broken = _broken(row, token)
    assert row.regex.fullmatch(broken) and not check(broken), f"{row.id}: {broken!r} passes {row.checksum}"
    out, _ = scrub(text.replace(token, broken))
    assert broken not in json.dumps(out), f"{row.id}: a token with a broken checksum must still be scrubbed"


def test_crc32_base62_is_githubs_scheme() -> None:
    """base62 with GitHub's digit order, padded to six; the CRC32 is of the random part only."""
    assert checksums.base62(0, 6) == "000000" and checksums.base62(61, 1) == "z" and checksums.base62(62, 2) == "10"
    random_part = "".join(random.Random(7).choices(CLASSES["alnum"], k=30))
    crc = zlib.crc32(random_part.encode())
    digits = checksums.crc32_base62_of(random_part)
    assert sum(checksums.BASE62.index(d) * 62**i for i, d in enumerate(reversed(digits))) == crc
    assert checksums.crc32_base62("npm_" + random_part + digits)
    assert not checksums.crc32_base62("npm_" + random_part[::-1] + digits)


def test_crc32_hex_le_is_grafanas_scheme() -> None:
    """Grafana writes the CRC32's bytes least significant first."""
    key = "glsa_" + "a" * 32
    assert checksums.crc32_hex_le_of(key) == struct.pack("<I", zlib.crc32(key.encode())).hex()


@pytest.mark.parametrize(
    ("text", "valid"),
    [  # BIP 173's test vectors
        ("A12UEL5L", True),
        ("an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs", True),
        ("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw", True),
        ("split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", True),
        ("A1G7SGD8", False),  # checksum computed with an upper-case HRP
        ("pzry9x0s0muk", False),  # no separator
        ("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxx", False),  # last character changed
    ],
)
def test_bech32_against_bip173(text: str, valid: bool) -> None:
    """The bech32 check agrees with the specification's vectors."""
    assert checksums.bech32(text) is valid


def test_macaroon_and_json_checks_reject_garbage() -> None:
    """Structure checks fail closed on truncated or non-base64 input."""
    rng = random.Random(3)
    token = "pypi-" + _macaroon_b64("pypi.org", rng)
    assert checksums.macaroon(token)
    assert (
        not checksums.macaroon(token[:-8])
        and not checksums.macaroon("pypi-AgEIcHlwaS5vcmc")
        and not checksums.macaroon("pypi-***")
    )
    assert checksums.base64_json("glc_" + _json_b64(["o", "k"], rng))
    assert not checksums.base64_json("glc_eyJub3QganNvbg") and not checksums.base64_json("glc_abc")


TRIGGER = detectors.TRIGGERS["vendor_token"]


@pytest.mark.parametrize("row", COMPILED)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_every_match_fires_the_trigger(row: TokenFormat, data: st.DataObject) -> None:
    """Any string of a row's pattern (after its label) fires the family's trigger, in C too, and is found."""
    label = row.labels[0] if row.labels else ""
    token = data.draw(st.from_regex(f"(?:{row.pattern})", fullmatch=True))
    text = f"{label}{token}"
    assert TRIGGER(text), f"{row.id}: {text!r} doesn't fire the trigger"
    assert detectors.fired(text) & detectors.FAMILY_BITS["vendor_token"]
    covered = [False] * len(text)
    for start, end in VENDOR.find(text):
        covered[start:end] = [True] * (end - start)
    assert all(covered[len(label) :]), f"{row.id}: {text!r} is not covered by {list(VENDOR.find(text))}"


def test_keywords_are_distinctive() -> None:
    """Keywords are three characters or more, but for two vendors whose prefix is all there is."""
    short = {word for word in tokens.KEYWORDS if len(word) < 3}
    assert short == {"Q~", "SK"}


@pytest.mark.parametrize("keyword", tokens.KEYWORDS)
def test_hostile_input_stays_linear(keyword: str) -> None:
    """A long string of keywords and token-like runs is scanned in well under a second."""
    text = (keyword + "A1b2" * 30 + "-_.=/ ") * 400 + "0123456789abcdef" * 2000
    start = time.perf_counter()
    list(VENDOR.find(text))
    assert time.perf_counter() - start < 0.5


# --- AWS secret keys after their label -------------------------------------------------------------------

AWS_SECRET = "".join(random.Random(11).choices(CLASSES["b64"], k=40))


@pytest.mark.parametrize(
    "template",
    [
        "awsSecretAccessKey: {}",
        "AWS_SECRET_ACCESS_KEY={}",
        '{{"AccessKeyId": "ASIA", "SecretAccessKey": "{}", "Expiration": "soon"}}',
        '{{\\"secretAccessKey\\": \\"{}\\"}}',
        "<SecretAccessKey>{}</SecretAccessKey>",
        "aws_secret_access_key = '{}'",
        "secret-access-key => {}",
        "AWS Secret Access Key: {}",
    ],
)
def test_aws_secret_after_label_is_scrubbed(template: str) -> None:
    """The 40-character key goes after its label in any case or separator; the label stays."""
    text = template.format(AWS_SECRET)
    assert [text[a:b] for a, b in AWS_LABEL.find(text)] == [AWS_SECRET]
    out, _ = scrub(text)
    assert AWS_SECRET not in json.dumps(out)
    assert text.split(AWS_SECRET)[0] in out["extra"]["note"]


@pytest.mark.parametrize(
    "text",
    [
        "awsSecretAccessKey: " + AWS_SECRET[:39],  # too short
        "secretAccessKeyId: " + AWS_SECRET,  # another field
        "secret_access-key: " + AWS_SECRET,  # mixed separators are no label
        "SecretAccessKey: [Filtered]",
        "awsSecretAccessKey rotated at 2024-05-01T10:00:00Z",
    ],
)
def test_aws_label_near_misses_are_kept(text: str) -> None:
    """No 40-character key right after a label: nothing is found."""
    assert list(AWS_LABEL.find(text)) == []


@settings(max_examples=200, deadline=None)
@given(
    label=st.sampled_from(["secretaccesskey", "secret_access_key", "secret-access-key", "secret access key"]),
    case=st.lists(st.booleans(), min_size=17, max_size=17),
    separator=st.sampled_from(["=", ": ", '": "', ">", " => "]),
)
def test_aws_label_matches_fire_the_trigger(label: str, case: list[bool], separator: str) -> None:
    """Every spelling the AWS label detector takes fires its keyword trigger (in C too)."""
    cased = "".join(ch.upper() if up else ch for ch, up in zip(label, case, strict=False))
    text = f"x{cased}{separator}{AWS_SECRET}"
    assert list(AWS_LABEL.find(text))
    assert detectors.TRIGGERS["aws_secret_label"](text)
    assert detectors.fired(text) & detectors.FAMILY_BITS["aws_secret_label"]


# --- the table's own checks ---------------------------------------------------------------------------------


def test_table_problems_are_all_reported_with_paths() -> None:
    """A malformed table names every problem by file and dotted path, in one error."""
    row: dict[str, Any] = {"id": "ok", "vendor": "x", "description": "x", "keywords": ["okk"], "pattern": "a",
                           "example": "a", "near_miss": "b"}  # fmt: skip
    rows: list[dict[str, Any]] = [
        {**row, "keywords": ["k"]},
        {**row, "colour": "red"},
        {"id": "ok2", "vendor": "x"},
        {**row, "id": "Bad-Id", "pattern": "("},
        {**row, "id": "ok5", "pattern": "(?P<g>a)", "checksum": "luhn", "covered_by": "nope"},
        {**row, "id": "ok5"},
    ]
    with pytest.raises(TokenTableError) as caught:
        tokens.parse_table({"placeholder": "[Filtered]", "tokens": rows}, "t.yml")
    message = str(caught.value)
    for expected in [
        "t.yml: tokens[0].keywords: expected a list of strings of two characters or more",
        "t.yml: tokens[1]: unknown key(s) colour",
        "t.yml: tokens[2].description: required",
        "t.yml: tokens[3].id: 'Bad-Id': use snake_case",
        "t.yml: tokens[3].pattern:",
        "t.yml: tokens[4].checksum: 'luhn'",
        "t.yml: tokens[4].covered_by: 'nope' is no built-in detector",
        "t.yml: tokens[4].pattern: no named groups",
        "t.yml: tokens[5].id: 'ok5' is defined twice",
    ]:
        assert expected in message


def test_shipped_table_loads_from_package_data() -> None:
    """tokens.yml is read as package data, and its placeholder is the secrets one."""
    placeholder, rows = tokens.load_table()
    assert placeholder == "[Filtered]" and rows == tokens.TABLE


@pytest.mark.parametrize(
    ("pattern", "first"),
    [("ab", "a"), ("ab|cd", ""), ("a(?:b|c)", "a"), ("a?b", ""), ("[a]b", ""), ("a[|]b", "a"), (r"a\|b", "a")],
)
def test_rows_are_grouped_by_a_first_character_every_match_has(pattern: str, first: str) -> None:
    """Only a literal that begins every match (no top-level alternative, no quantifier) groups a row."""
    assert tokens._first_literal(pattern) == first
