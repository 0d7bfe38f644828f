"""Key names compare without case or separators."""

from __future__ import annotations


def normalize_key(key: str) -> str:
    """Key names compare without case or separators: `API-Key`, `api_key` and `apiKey` are one."""
    return key.lower().replace("_", "").replace("-", "").replace(" ", "").replace(".", "")


def normalize_key_pattern(pattern: str) -> str:
    """Drop literal separators (`_ - space`, and escaped dots) outside character classes, to match normalized keys.

    Letters are lowercased, except escape letters (`\\S` stays `\\S`, not the opposite `\\s`).
    """
    out: list[str] = []
    in_class = False
    escaped = False
    for ch in pattern:
        if escaped:
            escaped = False
            if ch in "_- ." and not in_class:
                out.pop()  # a literal separator: normalized keys have none
                continue
            out.append(ch)
        elif ch == "\\":
            out.append(ch)
            escaped = True
        elif ch == "[":
            in_class = True
            out.append(ch)
        elif ch == "]":
            in_class = False
            out.append(ch)
        elif ch in "_- " and not in_class:
            continue
        else:
            out.append(ch.lower())
    return "".join(out)
