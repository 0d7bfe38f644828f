"""The `_meta` an event arrives with: kept as remarks about the event's own fields, never with values.

Sentry's `_meta` can carry `val`, the original of a value that was changed, and `err` entries with data from
the value: an SDK (or anyone) could send the very text the rules remove. The engine writes its own `_meta`
and merges what came in; before that, what came in is cut down to what can't hold a value:

- only nodes at paths that exist in the scrubbed event (so `_meta` keys are the event's own keys);
- in each node only `len` (a count), remarks `[rule_id, type]` or `[rule_id, type, start, end]`, and the
  kinds of errors, with rule ids and kinds that are plain names: no `@` inside (no address) and at most
  8 digits (too few for a card, IMEI or account number). The rules themselves can't judge them: a rule id
  such as `@password:filter` reads like a secret to them.
"""

from __future__ import annotations

import re
from typing import Any

from .meta import merge_meta

_MAX_DEPTH = 64  # deeper than any event path; a deeper node is dropped
_REMARK_TYPES = frozenset({"a", "x", "s", "m", "p", "e"})  # annotated, removed, substituted, masked, pseudonymized...
_NAME = re.compile(r"[!@]?[A-Za-z0-9_.:-]{1,64}")  # `!limit`, `@password:filter`, `pii.email`, `invalid_data`
_MAX_DIGITS = 8


def merge_incoming_meta(event: dict[str, Any], incoming: Any) -> None:
    """Put the cleaned `incoming` `_meta` into the scrubbed `event`, under the remarks the engine made."""
    kept = _prune(incoming, event, 0)
    if kept is None:
        return
    own = event.get("_meta")
    event["_meta"] = merge_meta(kept, own) if isinstance(own, dict) else kept


def _prune(meta: Any, value: Any, depth: int) -> dict[str, Any] | None:
    if not isinstance(meta, dict) or depth > _MAX_DEPTH:
        return None
    out: dict[str, Any] = {}
    for key, child in meta.items():
        if key == "":
            node = _clean_node(child)
            if node:
                out[""] = node
            continue
        if isinstance(value, dict) and key in value and key != "_meta":
            target = value[key]
        elif isinstance(value, list) and key.isascii() and key.isdigit() and int(key) < len(value):
            target = value[int(key)]
        else:
            continue  # a path the event doesn't have
        pruned = _prune(child, target, depth + 1)
        if pruned:
            out[key] = pruned
    return out or None


def _clean_node(node: Any) -> dict[str, Any]:
    if not isinstance(node, dict):
        return {}
    out: dict[str, Any] = {}
    length = node.get("len")
    if isinstance(length, int) and not isinstance(length, bool) and length >= 0:
        out["len"] = length
    remarks = [r for r in map(_remark, _list(node.get("rem"))) if r is not None and _is_name(r[0])]
    if remarks:
        out["rem"] = remarks
    errors = [kind for kind in map(_error_kind, _list(node.get("err"))) if kind and _is_name(kind)]
    if errors:
        out["err"] = errors
    return out


def _remark(remark: Any) -> list[Any] | None:
    if not isinstance(remark, list) or len(remark) not in (2, 4):
        return None
    rule_id, kind = remark[0], remark[1]
    if not isinstance(rule_id, str) or not isinstance(kind, str) or kind not in _REMARK_TYPES:
        return None
    if len(remark) == 4 and not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in remark[2:]):
        return None
    return list(remark)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _error_kind(error: Any) -> str | None:
    """An error's kind (`invalid_data`); its data (which may quote the value) is left out."""
    kind = error[0] if isinstance(error, list) and error else error
    return kind if isinstance(kind, str) else None


def _is_name(value: str) -> bool:
    return _NAME.fullmatch(value) is not None and sum(c.isdigit() for c in value) <= _MAX_DIGITS


__all__ = ["merge_incoming_meta"]
