"""What the rules did, and what audit-mode rules would have done, as paths and rule ids: never values.

Enforced redactions are read back from the `_meta` remarks the engine wrote. Audit-mode rules run in
an `Auditor`: the same engine over the audit rules (plus the allowlists), applied to a copy of the
already-scrubbed payload, so it reports exactly what enforcing the rule would change next.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from ..rules.model import ActionType, Rule
from .engine import Remark, Scrubber, ScrubError

ACTIONS = {"x": "remove", "s": "replace", "m": "mask", "p": "hash"}


class Redaction(NamedTuple):
    """One redaction: where (a dotted path), by which rule, and how (a tuple: cheap to make per value)."""

    item_type: str
    path: str
    rule: str
    action: str


@dataclass(slots=True)
class ScrubReport:
    """The redactions made while scrubbing one envelope, and those audit-mode rules would have made."""

    enforced: list[Redaction] = field(default_factory=list)
    audited: list[Redaction] = field(default_factory=list)


def redactions_in(meta: Any, item_type: str, prefix: str = "") -> Iterator[Redaction]:
    """Every remark in a Sentry `_meta` tree, with its path."""
    if not isinstance(meta, dict):
        return
    for key, value in meta.items():
        if key == "":
            for remark in value.get("rem", ()) if isinstance(value, dict) else ():
                yield from _from_remarks([remark], item_type, prefix)
        else:
            yield from redactions_in(value, item_type, f"{prefix}.{key}" if prefix else str(key))


def _from_remarks(remarks: Sequence[Remark], item_type: str, path: str) -> Iterator[Redaction]:
    for remark in remarks:
        if isinstance(remark, list) and len(remark) >= 2:
            yield Redaction(item_type, path or "(root)", str(remark[0]), ACTIONS.get(str(remark[1]), str(remark[1])))


def text_redactions(remarks: Sequence[Remark], item_type: str, root: str) -> list[Redaction]:
    """Redactions from the remarks of a payload scrubbed as one string."""
    return list(_from_remarks(remarks, item_type, root.lstrip("@")))


class Auditor:
    """Runs audit-mode rules on copies and reports what they would redact."""

    def __init__(self, rules: Sequence[Rule], hash_key: bytes, time_limit: float) -> None:
        keep = [r for r in rules if r.action.type is ActionType.KEEP]
        audit = [dataclasses.replace(r, audit=False) for r in rules if r.audit]
        self.rule_ids = tuple(r.id for r in audit)
        self._rules = (rules, hash_key, time_limit)
        self._scrubber = Scrubber([*keep, *audit], hash_key, time_limit, identity_keys=())

    def twin(self, pause: float = 0.0) -> Auditor:
        """An auditor with its own caches, for another thread."""
        twin = Auditor(*self._rules)
        twin._scrubber = twin._scrubber.twin(pause)
        return twin

    # An audit that fails (say, it runs out of time) reports nothing: it must never cost the item.

    def event(self, event: dict[str, Any], item_type: str, time_limit: float | None = None) -> list[Redaction]:
        """What the audit rules would redact in an (already scrubbed) event."""
        copy = orjson.loads(orjson.dumps({k: v for k, v in event.items() if k != "_meta"}))
        remarks: dict[str, Any] = {}
        try:
            self._scrubber.scrub_event(copy, remarks, time_limit)
        except ScrubError:
            return []
        return list(redactions_in(remarks, item_type))

    def payload(self, payload: Any, root: str, item_type: str, time_limit: float | None = None) -> list[Redaction]:
        """What the audit rules would redact in a JSON payload scrubbed at `root`."""
        meta: dict[str, Any] = {}
        try:
            self._scrubber.scrub(orjson.loads(orjson.dumps(payload)), root, meta, time_limit)
        except ScrubError:
            return []
        return list(redactions_in(meta, item_type, root.lstrip("@")))

    def text(self, text: str, root: str, item_type: str, time_limit: float | None = None) -> list[Redaction]:
        """What the audit rules would redact in a text payload."""
        remarks: list[Remark] = []
        try:
            self._scrubber.scrub_text(text, root, remarks, time_limit)
        except ScrubError:
            return []
        return text_redactions(remarks, item_type, root)


def auditor_for(rules: Sequence[Rule], hash_key: bytes, time_limit: float) -> Auditor | None:
    """An Auditor if any rule is in audit mode."""
    return Auditor(rules, hash_key, time_limit) if any(r.audit for r in rules) else None


__all__ = ["ACTIONS", "Auditor", "Redaction", "ScrubReport", "auditor_for", "redactions_in", "text_redactions"]
