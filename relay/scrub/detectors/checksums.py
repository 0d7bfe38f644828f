"""The checks vendor tokens carry in themselves, by the name the token table (tokens.yml) gives them.

Each check takes the whole token and says whether its own redundancy holds: a CRC32 over the random part
(GitHub and npm in base62, Grafana in hex), a bech32 checksum (age), or the structure a token encodes
(a PyPI macaroon, a base64 JSON object). None of them needs a network call or a key.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Callable

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def base62(number: int, width: int) -> str:
    """`number` in base62 (GitHub's digit order), left-padded with zeros to `width` digits."""
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    return "".join(reversed(digits)).rjust(width, "0")


def crc32_base62_of(random_part: str) -> str:
    """The six base62 digits GitHub and npm append to a token's random part: its CRC32."""
    return base62(zlib.crc32(random_part.encode()), 6)


def crc32_base62(token: str) -> bool:
    """A GitHub (ghp_, gho_, ghu_, ghs_, ghr_) or npm (npm_) token: the last 6 characters are the CRC32."""
    _, _, body = token.partition("_")
    return len(body) > 6 and crc32_base62_of(body[:-6]) == body[-6:]


def crc32_hex_le_of(key: str) -> str:
    """The suffix of a Grafana service account token: the CRC32 of the rest, little-endian, in hex."""
    return zlib.crc32(key.encode()).to_bytes(4, "little").hex()


def crc32_hex_le(token: str) -> bool:
    """A Grafana service account token (glsa_<secret>_<crc32>): the suffix is the CRC32 of the rest."""
    key, _, check = token.rpartition("_")
    return bool(key) and crc32_hex_le_of(key) == check


def _bech32_polymod(values: list[int]) -> int:
    check = 1
    for value in values:
        top = check >> 25
        check = (check & 0x1FFFFFF) << 5 ^ value
        for index, generator in enumerate(_BECH32_GENERATOR):
            if (top >> index) & 1:
                check ^= generator
    return check


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(ch) >> 5 for ch in hrp] + [0] + [ord(ch) & 31 for ch in hrp]


def bech32_checksum_of(hrp: str, data: str) -> str:
    """The six bech32 characters that complete `hrp` + "1" + `data` (both lowercase)."""
    values = _hrp_expand(hrp) + [BECH32.index(ch) for ch in data]
    polymod = _bech32_polymod([*values, 0, 0, 0, 0, 0, 0]) ^ 1
    return "".join(BECH32[(polymod >> 5 * (5 - i)) & 31] for i in range(6))


def bech32(token: str) -> bool:
    """A bech32 string (BIP 173; age secret keys are upper-case bech32): its checksum holds."""
    text = token.lower()
    hrp, separator, data = text.rpartition("1")
    if not hrp or not separator or len(data) < 6 or any(ch not in BECH32 for ch in data):
        return False
    return _bech32_polymod(_hrp_expand(hrp) + [BECH32.index(ch) for ch in data]) == 1


def _unbase64(text: str) -> bytes | None:
    """Standard or URL-safe base64, padded or not; None when it isn't base64."""
    text = text.rstrip("=")
    try:
        return base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A protobuf-style varint at `pos`: (value, position after it); (-1, pos) when it runs off the end."""
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return -1, pos


def _fields(data: bytes, pos: int) -> tuple[list[int], int]:
    """One section of a v2 macaroon: its field types up to the end-of-section 0; pos -1 when malformed."""
    types: list[int] = []
    while pos < len(data):
        kind, pos = _varint(data, pos)
        if kind == 0:
            return types, pos
        size, pos = _varint(data, pos)
        if kind < 0 or size < 0 or pos + size > len(data):
            return types, -1
        types.append(kind)
        pos += size
    return types, -1


def macaroon(token: str) -> bool:
    """A PyPI token (pypi-<base64 macaroon>): a well-formed version 2 macaroon with a 32-byte signature."""
    data = _unbase64(token.partition("-")[2])
    if not data or data[0] != 2:
        return False
    types, pos = _fields(data, 1)  # the macaroon's location (1) and identifier (2)
    if pos < 0 or 2 not in types:
        return False
    while pos < len(data) and data[pos] != 0:  # caveats, each ended by a 0, the list by another
        types, pos = _fields(data, pos)
        if pos < 0 or 2 not in types:
            return False
    if pos >= len(data):
        return False
    kind, after = _varint(data, pos + 1)
    size, after = _varint(data, after)
    return kind == 6 and size == 32 and after + 32 == len(data)


def base64_json(token: str) -> bool:
    """A token that carries a base64 JSON object (from "eyJ", i.e. `{"`, up to the next "_"): it decodes."""
    start = token.find("eyJ")
    if start < 0:
        return False
    data = _unbase64(token[start:].partition("_")[0])
    if data is None:
        return False
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


CHECKSUMS: dict[str, Callable[[str], bool]] = {
    "crc32_base62": crc32_base62,
    "crc32_hex_le": crc32_hex_le,
    "bech32": bech32,
    "macaroon": macaroon,
    "base64_json": base64_json,
}
