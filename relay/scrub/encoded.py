"""Percent-encoded text (query strings, form bodies, URL paths): decoded for the detectors, redacted encoded.

`user=anna%40gmx.de` holds an e-mail address that no detector sees as written. The engine decodes such a
string, finds what the rules find in the decoded text, and maps each span back onto the encoded one, so the
whole encoded run (`anna%40gmx.de`) is what gets replaced.
"""

from __future__ import annotations

import re

PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")


def percent_decode(text: str) -> tuple[str, list[int]]:
    """The text with its percent-escapes decoded (as UTF-8 where they form it, else one character per byte),
    and for each decoded character the offset in `text` where it begins, plus `len(text)` at the end."""
    out: list[str] = []
    index: list[int] = []
    cursor = 0
    for run in _RUN.finditer(text):
        start, end = run.span()
        for offset in range(cursor, start):
            index.append(offset)
        out.append(text[cursor:start])
        raw = bytes.fromhex(text[start:end].replace("%", ""))
        position = start
        while raw:
            char, used = _first_char(raw)
            out.append(char)
            index.append(position)
            position += 3 * used
            raw = raw[used:]
        cursor = end
    for offset in range(cursor, len(text)):
        index.append(offset)
    out.append(text[cursor:])
    index.append(len(text))
    return "".join(out), index


def _first_char(raw: bytes) -> tuple[str, int]:
    """The first character of `raw` and the bytes it took: a UTF-8 sequence, or one byte as Latin-1."""
    lead = raw[0]
    size = 1 if lead < 0x80 else 2 if lead >> 5 == 6 else 3 if lead >> 4 == 14 else 4 if lead >> 3 == 30 else 0
    if size > 1 and len(raw) >= size:
        try:
            return raw[:size].decode("utf-8"), size
        except UnicodeDecodeError:
            pass
    return chr(lead), 1


__all__ = ["PERCENT_ESCAPE", "percent_decode"]
